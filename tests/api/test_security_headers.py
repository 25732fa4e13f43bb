"""Security headers on every kind of answer, and Cache-Control on the static files.

The expected values are written out here, not imported from server/api/middleware/security.py, so a
loosened policy fails a test instead of changing what the test expects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import Settings

PAGE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "worker-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
FIXED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
# features a drawing page has no use for; each must be switched off, i.e. "name=()"
NO_FEATURES = ("camera", "microphone", "geolocation", "payment", "usb", "display-capture")


def parse_csp(header: str) -> dict[str, list[str]]:
    """{directive: [sources]} from a Content-Security-Policy value."""
    policy = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in policy, f"{name} twice in {header!r}"
        policy[name] = sources
    return policy


def assert_security_headers(response: httpx.Response, csp: dict[str, list[str]] = PAGE_CSP) -> None:
    headers = response.headers
    for name, value in FIXED.items():
        assert headers.get_list(name) == [value], f"{name} on {response.request.url}"
    assert parse_csp(headers["content-security-policy"]) == csp
    assert len(headers.get_list("content-security-policy")) == 1
    features = dict(item.strip().split("=", 1) for item in headers["permissions-policy"].split(","))
    for feature in NO_FEATURES:
        assert features.get(feature) == "()", f"{feature} is not switched off: {features}"


# --- every kind of answer ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/css/app.css", 200),
        ("GET", "/js/main.js", 200),
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/model", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/metrics", 200),
        ("GET", "/no-such-file.js", 404),
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", "/api/v1/predict", 405),
        ("POST", "/api/v1/predict", 422),
    ],
)
def test_every_answer_carries_the_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert_security_headers(response)


def test_a_413_carries_the_headers(client: TestClient, kit: Any) -> None:
    body = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    response = client.post(
        "/api/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    kit.assert_error(response, 413, "limit")
    assert_security_headers(response)


@pytest.fixture(scope="module")
def failing_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The app plus one route with a bug in it."""
    app: FastAPI = create_app(make_settings())

    @app.get("/api/v1/bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    with TestClient(app) as client:  # raise_server_exceptions: a bug that escapes fails here
        yield client


def test_a_500_is_json_and_carries_the_headers(failing_client: TestClient) -> None:
    response = failing_client.get("/api/v1/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; it has been logged"}
    assert_security_headers(response)
    assert "a bug" not in response.text


def test_a_route_policy_is_kept_not_overwritten(client: TestClient) -> None:
    response = client.get("/docs")
    policy = parse_csp(response.headers["content-security-policy"])
    assert policy != PAGE_CSP
    assert any(source.startswith("'sha256-") for source in policy["script-src"])
    assert len(response.headers.get_list("content-security-policy")) == 1


# --- caching of static files ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/index.html", "/css/app.css", "/js/main.js"])
def test_front_end_files_are_revalidated_with_their_etag(client: TestClient, path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = client.get(path, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["cache-control"] == "no-cache"
    assert again.headers["etag"] == etag
    assert_security_headers(again)


def test_a_changed_etag_gets_the_file_again(client: TestClient) -> None:
    response = client.get("/css/app.css", headers={"if-none-match": '"not-the-etag"'})
    assert response.status_code == 200
    assert response.content


def test_api_answers_are_not_marked_for_caching_as_files(client: TestClient) -> None:
    assert "cache-control" not in client.get("/api/v1/model").headers
    assert client.get("/metrics").headers["cache-control"] == "no-store"
