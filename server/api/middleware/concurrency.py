"""A cap on requests in progress per process, and a separate one on open event streams: past
either, 503 with Retry-After at once.

Counts requests, not connections (uvicorn's own limit_concurrency counts idle keep-alive
connections too, so a crowd of idle clients would lock everyone out). The probes and the
metrics are exempt: a busy server is alive, and its metrics matter most when it is busy. An
event stream is open for minutes while costing next to nothing, so streams have their own cap:
a class following its jobs never takes the places of predictions.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.middleware.asgi import route_path, send_json

EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})
STREAM_PATH = re.compile(r"/api/v1/trainings/[^/]+/events")


class ConcurrencyLimit:
    """Pure ASGI middleware; one event loop per process, so plain counters are exact."""

    def __init__(
        self,
        app: ASGIApp,
        max_requests: int,
        max_streams: int = 1000,
        retry_after_s: int = 1,
        exempt_paths: frozenset[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.max_requests = max_requests
        self.max_streams = max_streams
        self.retry_after_s = retry_after_s
        self.exempt_paths = exempt_paths
        self.in_progress = 0
        self.streams = 0

    async def _reject(self, send: Send, detail: str) -> None:
        headers = [(b"retry-after", str(self.retry_after_s).encode())]
        await send_json(send, 503, f"{detail}; retry in {self.retry_after_s} s", headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if STREAM_PATH.fullmatch(route_path(scope)):
            await self._stream(scope, receive, send)
            return
        if self.in_progress >= self.max_requests:
            await self._reject(
                send, f"the server is busy ({self.max_requests} requests in progress)"
            )
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.streams >= self.max_streams:
            await self._reject(send, f"{self.max_streams} event streams are open here, the most")
            return
        self.streams += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams -= 1
