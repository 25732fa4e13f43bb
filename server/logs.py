"""How the server logs: plain text for people, or one JSON object per line for log collectors.

Every line names the request it was written for (asgi-correlation-id's filter reads the id
from the request's context); the access lines add method, route, path, status and ms.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

ACCESS_FIELDS = ("method", "route", "path", "status", "ms")
NO_REQUEST = "-"  # the id on lines written outside any request (start-up, shutdown)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, and the access
    fields when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "correlation_id", NO_REQUEST)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id if request_id != NO_REQUEST else None,
        }
        line.update({key: getattr(record, key) for key in ACCESS_FIELDS if hasattr(record, key)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def logging_config(level: str, log_format: Literal["text", "json"]) -> dict[str, Any]:
    """A logging.config.dictConfig for ours and uvicorn's loggers; uvicorn applies it in every
    worker. uvicorn's own access lines are replaced by convscope.access (see observe.py)."""
    upper = level.upper()
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {
                "()": "asgi_correlation_id.CorrelationIdFilter",
                "default_value": NO_REQUEST,
            }
        },
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "convscope": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
