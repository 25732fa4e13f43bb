"""One look at each request, for both records of it: the metrics and the access line.

Timing the request, catching its status and finding its route template once serves both; two
middlewares each doing it doubled that work on every request.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.middleware.request_id import access_logger, printable
from server.api.prometheus import METHODS, Metrics, route_template


class ObservedRequests:
    """Pure ASGI middleware: counts and times each request by route and status, and writes one
    access line with its id, method, path, status and milliseconds (in JSON, fields of their
    own)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before it answers

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        start = time.perf_counter()
        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.in_progress.dec()
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(seconds)
            if access_logger.isEnabledFor(logging.INFO):
                ms = round(seconds * 1000, 3)
                path = scope["path"]
                access_logger.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    printable(path),
                    status,
                    ms,
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "path": path,
                        "status": status,
                        "ms": ms,
                    },
                )
