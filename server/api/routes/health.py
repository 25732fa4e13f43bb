"""Liveness and readiness: answers once the model is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import ModelsDep
from server.api.schemas.common import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(_: ModelsDep) -> dict[str, str]:
    """The models are loaded (start-up fails otherwise)."""
    return {"status": "ok"}
