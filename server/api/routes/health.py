"""Liveness and readiness: answers once the model is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import PredictorDep
from server.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(_: PredictorDep) -> dict[str, str]:
    """The model is loaded (start-up fails otherwise)."""
    return {"status": "ok"}
