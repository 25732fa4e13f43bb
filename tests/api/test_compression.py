"""Compression: zstd for clients that take it, gzip for the rest, never for tiny bodies, and
never for event streams, which pass through message by message."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from typing import Any

import pytest
import zstandard
from fastapi.testclient import TestClient

from server.api.middleware.compression import Compression, accepted_encodings, quality

PIXELS = [[0.0] * 28 for _ in range(28)]
BODY = {"pixels": PIXELS, "activations": True, "encoding": "base64"}


def raw_post(client: TestClient, accept: str) -> tuple[dict[str, str], bytes]:
    """Headers and the bytes on the wire, not decoded by the client."""
    with client.stream(
        "POST", "/api/v1/predict", json=BODY, headers={"Accept-Encoding": accept}
    ) as response:
        assert response.status_code == 200
        return dict(response.headers), b"".join(response.iter_raw())


def without_timings(body: bytes) -> dict[str, Any]:
    """The answer minus the one part that differs per request."""
    answer: dict[str, Any] = json.loads(body)
    answer.pop("timings_ms")
    return answer


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", {"gzip", "deflate", "br", "zstd"}),
        ("zstd;q=0, gzip", {"gzip"}),
        ("ZSTD;q=0.5", {"zstd"}),
        ("zstd;q=0.000", set()),
        ("", set()),
    ],
)
def test_accepted_encodings(header: str, expected: set[str]) -> None:
    scope = {"type": "http", "headers": [(b"accept-encoding", header.encode())]}
    assert accepted_encodings(scope) == expected


def test_quality_of_a_malformed_q_is_zero() -> None:
    assert quality("q=abc") == 0.0
    assert quality("") == 1.0


def test_zstd_when_accepted_and_identical_to_the_plain_body(client: TestClient) -> None:
    plain_headers, plain = raw_post(client, "identity")
    headers, wire = raw_post(client, "gzip, zstd")
    assert "content-encoding" not in plain_headers
    assert headers["content-encoding"] == "zstd"
    assert "accept-encoding" in headers["vary"].lower()
    assert int(headers["content-length"]) == len(wire) < len(plain)
    decoded = zstandard.ZstdDecompressor().decompressobj().decompress(wire)
    assert without_timings(decoded) == without_timings(plain)


def test_gzip_when_only_gzip_is_accepted(client: TestClient) -> None:
    _, plain = raw_post(client, "identity")
    headers, wire = raw_post(client, "gzip")
    assert headers["content-encoding"] == "gzip"
    assert without_timings(gzip.decompress(wire)) == without_timings(plain)


def test_small_bodies_stay_plain(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Accept-Encoding": "zstd"})
    assert "content-encoding" not in response.headers
    assert response.json() == {"status": "ok"}


def test_front_end_files_can_be_zstd_encoded(client: TestClient) -> None:
    with client.stream("GET", "/", headers={"Accept-Encoding": "zstd"}) as response:
        wire = b"".join(response.iter_raw())
        headers = response.headers
    assert response.status_code == 200
    assert headers["content-encoding"] == "zstd"
    html = zstandard.ZstdDecompressor().decompressobj().decompress(wire)
    assert html.startswith(b"<!doctype html>")


# --- event streams pass through -----------------------------------------------------------


def event_stream_app(seen_by_client: list[dict[str, Any]]) -> Any:
    """An ASGI app that sends an event stream in three messages and, after each, checks that
    the client already has it: a buffering middleware would hold them back until the end."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(3):
            event = f"data: {'x' * 2000} {i}\n\n".encode()  # over the 1 KB threshold
            await send({"type": "http.response.body", "body": event, "more_body": True})
            assert seen_by_client[-1].get("body") == event, f"event {i} was held back"
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def drive(middleware: Compression, accept: str, seen: list[dict[str, Any]]) -> None:
    """One GET through `middleware` with `accept` as Accept-Encoding; what it sends lands in
    `seen`."""
    headers = [(b"accept-encoding", accept.encode())] if accept else []
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        seen.append(message)

    asyncio.run(middleware(scope, receive, send))


@pytest.mark.parametrize("accept", ["zstd", "gzip", "gzip, deflate, br, zstd", ""])
def test_event_streams_pass_through_unbuffered_and_uncompressed(accept: str) -> None:
    seen: list[dict[str, Any]] = []
    drive(Compression(event_stream_app(seen), minimum_size=1024), accept, seen)
    start, *bodies = seen
    headers = dict(start["headers"])
    assert b"content-encoding" not in headers
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert len(bodies) == 4  # three events and the end, one message each
    assert b"".join(m["body"] for m in bodies).count(b"data: ") == 3


# --- the kept compressor ------------------------------------------------------------------


def body_app(body: bytes) -> Any:
    """An ASGI app that answers `body` as JSON in one message."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def wire_of(middleware: Compression) -> bytes:
    """The body `middleware` sends to a client that takes zstd."""
    seen: list[dict[str, Any]] = []
    drive(middleware, "zstd", seen)
    assert dict(seen[0]["headers"])[b"content-encoding"] == b"zstd"
    return b"".join(m.get("body", b"") for m in seen[1:])


def test_a_kept_compressor_sends_the_bytes_of_a_new_one() -> None:
    bodies = [
        json.dumps({"data": "A" * n + "xyz" * (n // 3), "n": n}).encode()
        for n in (5000, 3000, 90000, 5000)
    ]
    kept = Compression(body_app(b""), minimum_size=1024)
    for body in bodies:  # of many sizes, one after another through the same middleware
        kept.app = body_app(body)
        assert wire_of(kept) == zstandard.ZstdCompressor(level=1).compress(body)


def test_each_thread_has_its_own_compressor() -> None:
    middleware = Compression(body_app(b""))
    mine = middleware.compressor()
    assert middleware.compressor() is mine
    theirs: list[zstandard.ZstdCompressor] = []
    thread = threading.Thread(target=lambda: theirs.append(middleware.compressor()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
