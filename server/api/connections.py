"""uvicorn's HTTP protocol with a deadline for each request's headers.

uvicorn closes a keep-alive connection that idles between requests, but it sets no clock
before a request's headers are complete: a client that connects and sends nothing, or half
its headers, holds a connection (and a file descriptor) for as long as it likes. Here every
new connection, and every request that has begun, has `header_timeout_s` to finish its head;
then a half-sent request gets a 408 and the connection closes. A head that grows past
MAX_HEAD_BYTES without ending gets a 431 at once (httptools would keep buffering it).
"""

from __future__ import annotations

import asyncio
import functools
import http
from typing import Any
from uuid import uuid4

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.api.middleware.security import ENCODED_HEADERS
from server.config import Settings

MAX_HEAD_BYTES = 64 * 1024  # request line and headers; browsers send a few KB, cookies included


@functools.cache
def header_timeout_s() -> float:
    """Read once per process: a protocol object is made for every connection."""
    return Settings().header_timeout_s


def closing_response(
    default_headers: list[tuple[bytes, bytes]], status: http.HTTPStatus, detail: str
) -> bytes:
    """A whole HTTP/1.1 answer with a JSON detail that closes the connection, written straight
    to the socket (no request reached the app, so no middleware adds these headers)."""
    body = orjson.dumps({"detail": detail})
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", uuid4().hex.encode()),
        *ENCODED_HEADERS,
    ]
    head = f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol, plus: no connection waits longer than the deadline for a request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout_s()
        self.header_deadline: asyncio.TimerHandle | None = None
        self.reading_head = False  # some bytes of a request are in, its headers are not complete
        self.head_bytes = 0

    def _arm_header_deadline(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(
                self.header_timeout, self._header_deadline_passed
            )

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _header_deadline_passed(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        if self.reading_head:
            self.logger.debug("closing a connection whose request headers stalled")
            detail = (
                f"the request headers did not arrive within {self.header_timeout:g} s; "
                "connection closed"
            )
            self._close_with(http.HTTPStatus.REQUEST_TIMEOUT, detail)
        self.transport.close()

    def _close_with(self, status: http.HTTPStatus, detail: str) -> None:
        self.transport.write(closing_response(self.server_state.default_headers, status, detail))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.reading_head and not self.transport.is_closing():
            self.head_bytes += len(data)  # only chunks after which the head is still open
            if self.head_bytes > MAX_HEAD_BYTES:
                self._disarm_header_deadline()
                detail = f"the request headers are larger than {MAX_HEAD_BYTES} bytes"
                self._close_with(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, detail)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()  # a new connection must start a request in time too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading_head = True
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)
