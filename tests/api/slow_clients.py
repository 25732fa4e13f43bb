"""Raw-socket clients for the slow-client tests: they send exactly the bytes they are told to,
then stall, the way a slow or hostile client does (an HTTP library would not)."""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", f"loopback only, not {parts.hostname}"
    assert parts.port is not None
    return parts.hostname, parts.port


def connect(url: str, data: bytes = b"", timeout: float = 10.0) -> socket.socket:
    """A connection that has sent `data` (maybe half a request) and nothing more."""
    sock = socket.create_connection(address(url), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_answer(raw: bytes) -> Answer:
    assert raw.startswith(b"HTTP/1.1 "), f"no HTTP answer, got {raw[:200]!r}"
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection or `timeout` passes:
    (bytes, closed)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
    except TimeoutError:
        pass
    except ConnectionResetError:
        return b"".join(chunks), True
    return b"".join(chunks), False


def wait_all_closed(socks: list[socket.socket], timeout: float) -> tuple[int, list[bytes]]:
    """Wait until the server has closed every socket (or `timeout`): (how many it closed, what
    each sent before closing)."""
    received = [b""] * len(socks)
    selector = selectors.DefaultSelector()
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
    closed = 0
    deadline = time.monotonic() + timeout
    try:
        while closed < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[key.data] += chunk
                else:
                    selector.unregister(sock)
                    closed += 1
    finally:
        selector.close()
    return closed, received


def read_answer(sock: socket.socket, timeout: float = 10.0) -> Answer:
    """One whole answer (by its Content-Length) from a connection that stays open."""
    sock.settimeout(timeout)
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {raw!r}"
        raw += chunk
    answer = parse_answer(raw)
    body = answer.body
    while len(body) < int(answer.headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return Answer(answer.status, answer.headers, body)


def request_bytes(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ensure_open_files(needed: int) -> None:
    """Raise this process's soft limit on open files to at least `needed`, if the hard one
    allows; otherwise fail, saying so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"need {needed} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@contextlib.contextmanager
def open_sockets(socks: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()
