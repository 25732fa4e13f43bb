"""The cap on requests in progress, over real sockets: requests held open by their unfinished
bodies fill it, the next one gets 503 with Retry-After, the probes still answer, and the
cap frees up as soon as the held requests end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.cli.local_server import LocalServer, local_server
from tests.api.slow_clients import connect, open_sockets, read_answer, request_bytes

CAP = 2
BODY = b'{"pixels": ' + str([[0.0] * 28] * 28).encode() + b"}"


@pytest.fixture(scope="module")
def server(weights_path: Path) -> Iterator[LocalServer]:
    env = {"CONVSCOPE_MAX_CONCURRENCY": str(CAP), "CONVSCOPE_BODY_TIMEOUT_S": "30"}
    with local_server(weights_path, env=env) as running:
        yield running


def held_request(url: str) -> tuple[bytes, object]:
    """A predict request with its head and half its body sent: in progress until the rest."""
    whole = request_bytes("POST", "/api/v1/predict", BODY, content_type="application/json")
    cut = len(whole) - len(BODY) // 2
    return whole[cut:], connect(url, whole[:cut])


def predict(url: str) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return httpx.post(
        f"{url}/api/v1/predict", content=BODY, headers=headers, timeout=10, trust_env=False
    )


def predict_until_refused(url: str, tries: int = 50) -> httpx.Response:
    """The held requests count once the server has read their heads, which it does in its own
    time: ask until the answer is a refusal (or give up and return the last answer)."""
    for _ in range(tries):
        response = predict(url)
        if response.status_code == 503:
            break
        time.sleep(0.05)
    return response


def test_past_the_cap_503_with_retry_after_then_room_again(server: LocalServer) -> None:
    assert predict(server.url).status_code == 200  # room at first
    held = [held_request(server.url) for _ in range(CAP)]
    with open_sockets([sock for _, sock in held]):  # type: ignore[misc]
        refused = predict_until_refused(server.url)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/json"
        assert "busy" in refused.json()["detail"]
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert refused.headers["x-request-id"]

        # the probes and the metrics are exempt: a busy server is not a dead one
        assert httpx.get(f"{server.url}/healthz", timeout=10, trust_env=False).status_code == 200
        assert httpx.get(f"{server.url}/metrics", timeout=10, trust_env=False).status_code == 200

        for rest, sock in held:
            sock.sendall(rest)  # type: ignore[attr-defined]
            assert read_answer(sock).status == 200  # type: ignore[arg-type]

    assert predict(server.url).status_code == 200  # the cap has room again


def test_refusals_are_counted_under_their_route(server: LocalServer) -> None:
    held = [held_request(server.url) for _ in range(CAP)]
    with open_sockets([sock for _, sock in held]):  # type: ignore[misc]
        assert predict_until_refused(server.url).status_code == 503
        for rest, sock in held:
            sock.sendall(rest)  # type: ignore[attr-defined]
            read_answer(sock)  # type: ignore[arg-type]
    text = httpx.get(f"{server.url}/metrics", timeout=10, trust_env=False).text
    refused = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "convscope_http_requests_total"
        and sample.labels == {"method": "POST", "route": "/api/v1/predict", "status": "503"}
    ]
    assert refused, "no 503 counted for POST /api/v1/predict"
    assert refused[0] >= 1
