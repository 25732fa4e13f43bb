"""The models this server answers with, so a client (the page's picker) can offer them."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import ModelsDep
from server.api.encoding import ORJSONResponse
from server.api.schemas.model_card import ModelSummary

router = APIRouter(prefix="/api/v1", tags=["model"])


@router.get("/models", response_model=list[ModelSummary])
def list_models(models: ModelsDep) -> ORJSONResponse:
    """Every weights file in the models folder, by name; `default` marks the one used when a
    request names none."""
    return ORJSONResponse(models.listing())
