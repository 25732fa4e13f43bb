"""X-Request-ID on every answer, and the id in the log lines: the access line of each request
(text by default, JSON with CONVSCOPE_LOG_FORMAT=json) and any line written while it runs."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.cli.local_server import local_server
from server.config import Settings
from server.logs import JsonFormatter, logging_config

NEW_ID = re.compile(r"[0-9a-f]{32}")
ORIGIN = "https://draw.example"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/css/app.css"),
        ("GET", "/docs"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/model/layers/conv9/weights"),  # 404
        ("POST", "/api/v1/predict"),  # 422
        ("DELETE", "/api/v1/predict"),  # 405
    ],
)
def test_every_answer_gets_a_new_id(client: TestClient, method: str, path: str) -> None:
    first = client.request(method, path).headers["x-request-id"]
    second = client.request(method, path).headers["x-request-id"]
    assert NEW_ID.fullmatch(first)
    assert NEW_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "sent",
    [
        "abc-123",
        "0af7651916cd43dd8448eb211c80319c",
        "Root=1-5759e988-bd862e3fe1be46a99427",
        "a" * 128,
    ],
)
def test_a_sane_client_id_is_kept(client: TestClient, sent: str) -> None:
    assert client.get("/healthz", headers={"x-request-id": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["a" * 129, "two words", "semi;colon", 'quote"d', "<script>", "tab\there"],
)
def test_an_odd_client_id_is_replaced(client: TestClient, sent: str) -> None:
    answered = client.get("/healthz", headers={"x-request-id": sent}).headers["x-request-id"]
    assert NEW_ID.fullmatch(answered), answered


def test_a_413_carries_the_id(client: TestClient) -> None:
    body = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    response = client.post(
        "/api/v1/predict",
        content=body,
        headers={"content-type": "application/json", "x-request-id": "big-one"},
    )
    assert response.status_code == 413
    assert response.headers["x-request-id"] == "big-one"


@pytest.fixture(scope="module")
def failing_app(make_settings: Callable[..., Settings]) -> FastAPI:
    """The app with CORS for ORIGIN, plus one route that logs a line and one with a bug."""
    app = create_app(make_settings(cors_origins=[ORIGIN]))

    @app.get("/api/v1/says-hello")
    def says_hello() -> dict[str, str]:
        logging.getLogger("convscope.test").warning("hello from inside the request")
        return {"said": "hello"}

    @app.get("/api/v1/bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    return app


def test_a_500_carries_the_id_and_cors_lets_the_page_read_it(failing_app: FastAPI) -> None:
    with TestClient(failing_app) as client:
        response = client.get("/api/v1/bug", headers={"origin": ORIGIN, "x-request-id": "oops-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "oops-1"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


# --- the id in the logs ----------------------------------------------------------------------


@pytest.fixture
def json_logging() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The server's JSON logging config applied in this process, writing to a buffer instead of
    stderr (restored afterwards); yields a function that returns the new lines, parsed."""
    names = ["convscope", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in map(logging.getLogger, names)]
    buffer = io.StringIO()
    config = logging_config("info", "json")
    config["handlers"]["stderr"]["stream"] = buffer
    logging.config.dictConfig(config)

    def lines() -> list[dict[str, Any]]:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line]

    try:
        yield lines
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def test_lines_written_during_a_request_carry_its_id(
    failing_app: FastAPI, json_logging: Callable[[], list[dict[str, Any]]]
) -> None:
    with TestClient(failing_app) as client:
        json_logging()  # start-up lines
        client.get("/api/v1/says-hello", headers={"x-request-id": "hello-7"})
        client.get("/api/v1/bug", headers={"x-request-id": "bug-7"})
    lines = json_logging()
    (hello,) = [line for line in lines if line["message"] == "hello from inside the request"]
    assert hello["request_id"] == "hello-7"
    assert hello["level"] == "warning"
    (bug,) = [line for line in lines if line["message"].startswith("unhandled error")]
    assert bug["request_id"] == "bug-7"
    assert "RuntimeError: a bug" in bug["exception"]
    access = {line["request_id"]: line for line in lines if line["logger"] == "convscope.access"}
    assert access["hello-7"]["status"] == 200
    assert access["bug-7"]["status"] == 500
    assert access["bug-7"]["route"] == "/api/v1/bug"


def test_json_formatter_outside_a_request() -> None:
    record = logging.LogRecord("convscope", logging.INFO, __file__, 1, "loaded %s", ("x",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "loaded x"
    assert line["request_id"] is None
    assert line["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def wait_for_log(path: Path, *needles: str, timeout: float = 15.0) -> list[str]:
    """The log's complete lines, once each needle is in one of them (the access line is written
    just after the answer is sent, so it may trail the client by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(errors="replace").split("\n")[:-1]  # the last may be half written
        if all(any(needle in line for line in lines) for needle in needles):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{needles} not all in the log:\n" + "\n".join(lines[-20:]))
        time.sleep(0.05)


def test_the_served_app_writes_one_json_line_per_request(weights_path: Path) -> None:
    env = {"CONVSCOPE_LOG_FORMAT": "json"}
    with local_server(weights_path, env=env, log_level="info") as server:
        for i, layer in enumerate(("conv1", "fc2", "conv9")):
            httpx.get(
                f"{server.url}/api/v1/model/layers/{layer}/weights",
                headers={"x-request-id": f"json-{i}"},
                timeout=10,
                trust_env=False,
            )
        lines = wait_for_log(server.log, *(f'"json-{i}"' for i in range(3)))
    parsed = [json.loads(line) for line in lines]  # every line, start-up included, is JSON
    access = {p["request_id"]: p for p in parsed if p["logger"] == "convscope.access"}
    for i, status in enumerate((200, 200, 404)):
        line = access[f"json-{i}"]
        assert line["method"] == "GET"
        assert line["route"] == "/api/v1/model/layers/{name}/weights"
        assert line["status"] == status
        assert isinstance(line["ms"], float)
        assert line["ms"] > 0
    assert not any(p["logger"] == "uvicorn.access" for p in parsed)  # ours replace uvicorn's


def test_the_served_app_logs_text_by_default(weights_path: Path) -> None:
    with local_server(weights_path, log_level="info") as server:
        httpx.get(
            f"{server.url}/api/v1/model",
            headers={"x-request-id": "text-1"},
            timeout=10,
            trust_env=False,
        )
        lines = wait_for_log(server.log, "[text-1]")
    (line,) = [line for line in lines if "[text-1]" in line]
    assert "convscope.access" in line
    assert "GET /api/v1/model 200" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
