"""X-Request-ID on every answer, and the logger of the one line per request that carries it.

The id is the client's when it sent a sane one (a proxy's or a tracer's), otherwise a new
one; asgi-correlation-id keeps it in a context variable, so any log line written while the
request runs can name it (see server/logs.py).
"""

from __future__ import annotations

import logging
import re
from uuid import uuid4

from asgi_correlation_id import CorrelationIdMiddleware
from starlette.types import ASGIApp

HEADER = "X-Request-ID"
# sane: short, and nothing that could forge a log line or a header (no spaces, no controls)
SANE_ID = re.compile(r"[A-Za-z0-9._~:/+=-]{1,128}")

access_logger = logging.getLogger("convscope.access")


def is_sane(value: str) -> bool:
    return SANE_ID.fullmatch(value) is not None


def printable(text: str) -> str:
    """`text` with control characters escaped: a path like /a%0Ab cannot start a fake log line."""
    return text if text.isprintable() else repr(text)[1:-1]


def new_id() -> str:
    return uuid4().hex


def request_id_middleware(app: ASGIApp) -> CorrelationIdMiddleware:
    """asgi-correlation-id with our header, id rule and generator."""
    return CorrelationIdMiddleware(app, header_name=HEADER, generator=new_id, validator=is_sane)
