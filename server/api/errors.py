"""Every failure becomes a 4xx with a `detail` a person can act on; nothing leaks a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.middleware.asgi import answer_unless_started, route_path, send_json
from server.explain.edits import EditError
from server.preprocess import (
    ImageTooLarge,
    NoDigitFound,
    NotAnImage,
    PreprocessError,
    UnsupportedImageType,
)

logger = logging.getLogger("convscope")

INTERNAL_ERROR = "internal error; it has been logged"

PREPROCESS_STATUS: dict[type[PreprocessError], int] = {
    UnsupportedImageType: 415,
    ImageTooLarge: 413,
    NotAnImage: 422,
    NoDigitFound: 422,
}


class InputError(Exception):
    """Bad input found by a route (not by the schema): a status and a message."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def preprocess_status(error: PreprocessError) -> int:
    return next((code for kind, code in PREPROCESS_STATUS.items() if isinstance(error, kind)), 422)


BAD_INPUT = (InputError, PreprocessError, EditError)  # raised by the work a route does


def bad_input_answer(error: Exception) -> JSONResponse | None:
    """The answer to an error of BAD_INPUT, wherever the work ran; None for any other error."""
    if isinstance(error, InputError):
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)
    if isinstance(error, PreprocessError):
        return JSONResponse({"detail": str(error)}, status_code=preprocess_status(error))
    if isinstance(error, EditError):
        return JSONResponse({"detail": str(error)}, status_code=422)
    return None


def internal_error_answer() -> JSONResponse:
    """The answer to a bug: nothing of it leaks, the log has it."""
    return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)


def describe_validation(errors: list[Any]) -> str:
    """One readable line from pydantic's error list: 'body.pixels: pixels must be ...'."""
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing" and not location:
            message = "the request body is missing; send a JSON object"
        if error.get("type") == "json_invalid":
            message = (
                f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
            )
            location = ""
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "invalid request"


def path_methods(routes: Sequence[BaseRoute], path: str) -> list[str]:
    """Every method `path` answers, whichever route has it: Starlette's 405 names only the
    first route that matched the path (GET of /trainings/{id}, not its DELETE)."""
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        if route.methods and route.path_format:
            pattern, _, _ = compile_path(route.path_format)
            if pattern.match(path):
                methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """422 for schema errors, the preprocessing error's own status, JSON 500 for bugs."""

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            {"detail": describe_validation(list(exc.errors())), "errors": errors}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 "error parsing the body" for bytes that are not UTF-8 text
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            detail = "the body is not valid JSON (not UTF-8 text)"
            return JSONResponse({"detail": detail}, status_code=422)
        if exc.status_code == 405:
            allowed = ", ".join(path_methods(request.app.router.routes, route_path(request.scope)))
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": allowed})
        return await http_exception_handler(request, exc)

    async def on_bad_input(_: Request, exc: Exception) -> JSONResponse:
        answer = bad_input_answer(exc)
        assert answer is not None, "registered for BAD_INPUT only"
        return answer

    for kind in BAD_INPUT:
        app.add_exception_handler(kind, on_bad_input)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error_answer()


class UnhandledErrors:
    """Pure ASGI middleware: a bug becomes the JSON 500 here, inside the middleware stack.

    Starlette sends its 500 from outside every middleware, so that answer would lack the
    request id, the security headers and CORS; this one passes back through all of them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def answer(send: Send, error: Exception) -> None:
            logger.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=error)
            await send_json(send, 500, INTERNAL_ERROR)

        await answer_unless_started(self.app, scope, receive, send, Exception, answer)
