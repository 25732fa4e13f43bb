"""Slow and idle clients, over real sockets, against `convscope serve` on a loopback port:
a stalled body gets 408, half-sent headers get 408 and a closed connection, silent and idle
connections are closed, and a crowd of idle connections does not slow anyone else down.

The deadlines are set to 1 s here (CONVSCOPE_BODY_TIMEOUT_S, ..._HEADER_TIMEOUT_S,
..._KEEP_ALIVE_S) so the tests wait seconds, not the defaults' tens of seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.cli.local_server import LocalServer, local_server
from tests.api.slow_clients import (
    connect,
    ensure_open_files,
    open_sockets,
    parse_answer,
    read_answer,
    read_until_closed,
    request_bytes,
    wait_all_closed,
)

DEADLINE_S = 1.0
QUICK = {
    "CONVSCOPE_BODY_TIMEOUT_S": str(DEADLINE_S),
    "CONVSCOPE_HEADER_TIMEOUT_S": str(DEADLINE_S),
    "CONVSCOPE_KEEP_ALIVE_S": str(int(DEADLINE_S)),
}
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished


@pytest.fixture(scope="module")
def server(weights_path: Path) -> Iterator[LocalServer]:
    with local_server(weights_path, env=QUICK) as running:
        yield running


def assert_answered_everywhere_headers(headers: dict[str, str]) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert len(headers["x-request-id"]) >= 16


# --- the body ---------------------------------------------------------------------------


def test_a_stalled_body_gets_408_in_json_and_the_connection_closes(server: LocalServer) -> None:
    head = request_bytes("POST", "/api/v1/predict", content_type="application/json")
    head = head.replace(b"Content-Length: 0", b"Content-Length: 1000")
    start = time.monotonic()
    with open_sockets([connect(server.url, head + b'{"pixels": [[0.0, ')]) as (sock,):
        raw, closed = read_until_closed(sock, timeout=15)
    elapsed = time.monotonic() - start
    answer = parse_answer(raw)
    assert answer.status == 408, raw[:300]
    assert answer.headers["content-type"] == "application/json"
    assert "did not arrive within 1 s" in answer.json()["detail"]
    assert answer.headers["connection"] == "close"
    assert_answered_everywhere_headers(answer.headers)
    assert closed, "the server kept the connection open after the 408"
    assert 0.8 * DEADLINE_S <= elapsed < 10, f"answered after {elapsed:.2f} s"


def test_a_stalled_chunked_body_gets_408_too(server: LocalServer) -> None:
    head = b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    with open_sockets([connect(server.url, head + b'b\r\n{"pixels": \r\n')]) as (sock,):
        raw, closed = read_until_closed(sock, timeout=15)
    assert parse_answer(raw).status == 408
    assert closed


def test_a_body_sent_in_pieces_within_the_deadline_is_answered(server: LocalServer) -> None:
    body = b'{"pixels": ' + str([[0.0] * 28] * 28).encode() + b"}"
    head = request_bytes("POST", "/api/v1/predict", body, content_type="application/json")
    head, body = head[: -len(body)], head[-len(body) :]
    with open_sockets([connect(server.url, head + body[:100])]) as (sock,):
        time.sleep(0.3 * DEADLINE_S)
        sock.sendall(body[100:])
        answer = read_answer(sock)
    assert answer.status == 200, answer.body[:300]
    assert set(answer.json()) >= {"label", "probabilities"}


# --- the headers ------------------------------------------------------------------------


def test_300_half_sent_heads_get_408_and_are_closed(server: LocalServer) -> None:
    ensure_open_files(1024)
    start = time.monotonic()
    with open_sockets([connect(server.url, HALF_HEAD) for _ in range(300)]) as socks:
        closed, received = wait_all_closed(socks, timeout=20)
    elapsed = time.monotonic() - start
    assert closed == 300, f"{300 - closed} of 300 half-open connections are still open"
    assert elapsed >= 0.8 * DEADLINE_S, f"closed after {elapsed:.2f} s, before the deadline"
    answers = [parse_answer(raw) for raw in received]
    assert {a.status for a in answers} == {408}
    assert all("headers did not arrive" in a.json()["detail"] for a in answers)
    assert_answered_everywhere_headers(answers[0].headers)
    assert len({a.headers["x-request-id"] for a in answers}) == 300


def test_a_head_that_never_ends_gets_431_before_the_deadline(server: LocalServer) -> None:
    endless = HALF_HEAD + b"a" * 100_000  # one header, 100 KB and counting
    start = time.monotonic()
    with open_sockets([connect(server.url, endless)]) as (sock,):
        raw, closed = read_until_closed(sock, timeout=15)
    answer = parse_answer(raw)
    assert answer.status == 431
    assert "larger than 65536 bytes" in answer.json()["detail"]
    assert closed
    assert time.monotonic() - start < 0.8 * DEADLINE_S  # refused on size, not on time


def test_a_large_but_finished_head_is_fine(server: LocalServer) -> None:
    cookies = "; ".join(f"c{i}={'v' * 100}" for i in range(150))  # ~16 KB of cookies
    with open_sockets([connect(server.url, request_bytes("GET", "/healthz", cookie=cookies))]) as (
        sock,
    ):
        assert read_answer(sock).status == 200


def test_a_silent_connection_is_closed_without_an_answer(server: LocalServer) -> None:
    start = time.monotonic()
    with open_sockets([connect(server.url)]) as (sock,):
        raw, closed = read_until_closed(sock, timeout=15)
    assert closed
    assert raw == b""  # no request began, so there is nothing to answer
    assert 0.8 * DEADLINE_S <= time.monotonic() - start < 10


def test_the_header_deadline_does_not_cut_a_request_that_arrived(server: LocalServer) -> None:
    with open_sockets([connect(server.url)]) as (sock,):
        time.sleep(0.5 * DEADLINE_S)  # connected, quiet for half the deadline, then a request
        sock.sendall(request_bytes("GET", "/healthz"))
        assert read_answer(sock).status == 200


# --- keep-alive -------------------------------------------------------------------------


def test_one_connection_serves_several_requests(server: LocalServer) -> None:
    with open_sockets([connect(server.url)]) as (sock,):
        for _ in range(3):
            sock.sendall(request_bytes("GET", "/healthz"))
            answer = read_answer(sock)
            assert answer.status == 200
            assert answer.json() == {"status": "ok"}


def test_an_idle_keep_alive_connection_is_closed(server: LocalServer) -> None:
    with open_sockets([connect(server.url, request_bytes("GET", "/healthz"))]) as (sock,):
        assert read_answer(sock).status == 200
        start = time.monotonic()
        raw, closed = read_until_closed(sock, timeout=15)
    assert closed
    assert raw == b""
    assert 0.5 * DEADLINE_S <= time.monotonic() - start < 10


def test_half_a_second_request_on_a_kept_connection_is_closed_too(server: LocalServer) -> None:
    with open_sockets([connect(server.url, request_bytes("GET", "/healthz"))]) as (sock,):
        assert read_answer(sock).status == 200
        sock.sendall(HALF_HEAD)
        raw, closed = read_until_closed(sock, timeout=15)
    assert closed
    assert parse_answer(raw).status == 408


# --- a crowd of idle connections --------------------------------------------------------


@pytest.mark.slow
def test_healthz_stays_fast_with_1000_idle_connections_open(weights_path: Path) -> None:
    ensure_open_files(1200)
    # deadlines long enough that the crowd stays for the whole measurement
    patient = {"CONVSCOPE_HEADER_TIMEOUT_S": "120", "CONVSCOPE_KEEP_ALIVE_S": "120"}
    with local_server(weights_path, env=patient) as running:
        crowd = [connect(running.url, HALF_HEAD if i % 2 else b"") for i in range(1000)]
        with open_sockets(crowd):
            seconds = []
            for _ in range(7):
                start = time.monotonic()
                with open_sockets([connect(running.url, request_bytes("GET", "/healthz"))]) as (
                    sock,
                ):
                    assert read_answer(sock).status == 200
                seconds.append(time.monotonic() - start)
            still_open, _ = wait_all_closed(crowd, timeout=0.2)
    assert still_open == 0, f"{still_open} of the idle connections were dropped"
    assert statistics.median(seconds) < 0.1, f"/healthz took {seconds} s"
