"""Entry point for ASGI servers: `uvicorn --factory server.api.main:create_default_app`."""

from __future__ import annotations

from fastapi import FastAPI

from server.api.app import create_app
from server.config import Settings


def create_default_app() -> FastAPI:
    """An app configured from CONVSCOPE_* environment variables."""
    return create_app(Settings())
