"""Response compression: zstd where the client accepts it, gzip otherwise.

Browsers send `Accept-Encoding: zstd`, and zstd compresses the answers about as small as gzip
for a fraction of its CPU. Level 1: deeper levels cost more time for the same size, since
base64-packed bytes gain nothing from a deeper match search (docs/speed.md, "Compression").
"""

from __future__ import annotations

import threading

import zstandard
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Never compressed nor held back: an event stream must reach the client event by event.
# (The gzip path, Starlette's GZipMiddleware, already lets these through untouched.)
STREAMED_TYPES = frozenset({"text/event-stream"})


def is_streamed(start: Message) -> bool:
    """Whether a response, by its start message's Content-Type, must pass through as sent."""
    content_type = Headers(raw=start.get("headers", [])).get("content-type", "")
    return content_type.partition(";")[0].strip().lower() in STREAMED_TYPES


def quality(params: str) -> float:
    """The q value of one Accept-Encoding item's parameters ("q=0.5"); 1 when absent."""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def accepted_encodings(scope: Scope) -> set[str]:
    """Content codings in Accept-Encoding, without those refused with q=0."""
    header = Headers(scope=scope).get("accept-encoding", "")
    accepted = set()
    for item in header.lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() and quality(params) > 0:
            accepted.add(coding.strip())
    return accepted


class Compression:
    """Pure ASGI middleware: zstd-encode whole bodies for clients that take zstd."""

    def __init__(
        self, app: ASGIApp, minimum_size: int = 1024, gzip_level: int = 3, zstd_level: int = 1
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.zstd_level = zstd_level
        self.compressors = threading.local()  # one ZstdCompressor a thread: see compressor()
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=gzip_level)

    def compressor(self) -> zstandard.ZstdCompressor:
        """This thread's compressor: compress() starts each frame afresh (the same bytes) but keeps
        the context it allocated, which a new compressor would allocate again; a compressor is
        not safe across threads, and a thread runs one compress() at a time."""
        compressor: zstandard.ZstdCompressor | None = getattr(self.compressors, "zstd", None)
        if compressor is None:
            compressor = zstandard.ZstdCompressor(level=self.zstd_level)
            self.compressors.zstd = compressor
        return compressor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "zstd" not in accepted_encodings(scope):
            await self.gzip(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []
        streamed = False

        async def compressing_send(message: Message) -> None:
            nonlocal start, streamed
            if streamed:
                await send(message)
                return
            if message["type"] == "http.response.start":
                if is_streamed(message):
                    streamed = True
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return  # buffer: our bodies are small and whole (JSON, the front end's files)
            body = b"".join(chunks)
            headers = MutableHeaders(raw=start["headers"])
            if len(body) >= self.minimum_size and "content-encoding" not in headers:
                body = self.compressor().compress(body)  # synchronous: no other response between
                headers["content-encoding"] = "zstd"
                headers["content-length"] = str(len(body))
                headers.add_vary_header("Accept-Encoding")
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, compressing_send)
