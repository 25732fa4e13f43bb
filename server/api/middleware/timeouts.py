"""A deadline for the request body: a client that stalls mid-body gets 408, not a held thread.

The deadline runs from the request's arrival (its headers are in), so a client that drips a
byte now and then cannot stretch it. Once the body is complete, later receives (a streaming
response listening for the client to go away) wait as long as they like.
"""

from __future__ import annotations

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.middleware.asgi import answer_unless_started, send_json


def declares_body(scope: Scope) -> bool:
    """Whether the request says a body follows (a length over 0, or chunked)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
    return False


class BodyReadTimeout(HTTPException):
    """Raised from receive(); an HTTPException, so FastAPI's body parsing answers it as 408."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:g} s; send it whole and promptly",
            headers={"connection": "close"},  # the rest of the body may still be on its way
        )


class BodyTimeout:
    """Pure ASGI middleware: every receive() before the body's last chunk races the deadline."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def _reject(self, send: Send, error: BodyReadTimeout) -> None:
        await send_json(send, 408, error.detail, [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not declares_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        body_complete = False

        async def timed_receive() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):  # uvicorn runs asyncio; cheap timer
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout(self.seconds) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        await answer_unless_started(
            self.app, scope, timed_receive, send, BodyReadTimeout, self._reject
        )
