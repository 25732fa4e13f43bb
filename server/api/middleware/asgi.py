"""What the pure ASGI middlewares share: the path routes see, a JSON error answer, and running
the app so that an error can still be answered as long as nothing has been sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

E = TypeVar("E", bound=Exception)


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the root path a proxy may mount the app under."""
    path: str = scope["path"]
    return path.removeprefix(scope.get("root_path", ""))


async def send_json(
    send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A whole answer `{"detail": ...}` with `status`, plus any extra `headers`."""
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def answer_unless_started(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    errors: type[E],
    answer: Callable[[Send, E], Awaitable[None]],
) -> None:
    """Run `app`; when it raises `errors` before its answer began, send `answer` instead.

    Once the answer's start is out, the error goes on up: half an answer cannot be taken back.
    """
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except errors as error:
        if started:
            raise
        await answer(send, error)
