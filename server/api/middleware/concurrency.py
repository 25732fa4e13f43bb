"""A cap on requests in progress per process: past it, 503 with Retry-After at once.

Counts requests, not connections (uvicorn's own limit_concurrency counts idle keep-alive
connections too, so a crowd of idle clients would lock everyone out). The probes and the
metrics are exempt: a busy server is alive, and its metrics matter most when it is busy.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.middleware.asgi import route_path, send_json

EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})


class ConcurrencyLimit:
    """Pure ASGI middleware; one event loop per process, so a plain counter is exact."""

    def __init__(
        self,
        app: ASGIApp,
        max_requests: int,
        retry_after_s: int = 1,
        exempt_paths: frozenset[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.max_requests = max_requests
        self.retry_after_s = retry_after_s
        self.exempt_paths = exempt_paths
        self.in_progress = 0

    async def _reject(self, send: Send) -> None:
        detail = (
            f"the server is busy ({self.max_requests} requests in progress); "
            f"retry in {self.retry_after_s} s"
        )
        await send_json(send, 503, detail, [(b"retry-after", str(self.retry_after_s).encode())])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.max_requests:
            await self._reject(send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
