"""Counterfactuals: "what would make it a 3", as the pen strokes that make the model read a 3.
The same concept at three levels: the search (server/explain/), this route, its schemas."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException

from server.api.deps import ModelsDep, SettingsDep
from server.api.encoding import ORJSONResponse, encode_map
from server.api.errors import InputError
from server.api.inputs import Clock, image_or_pixels
from server.api.schemas.common import INPUT_ERRORS, ErrorResponse
from server.api.schemas.counterfactual import CounterfactualRequest, CounterfactualResponse
from server.explain.counterfactual import (
    CounterfactualOptions,
    TargetIsCurrentLabelError,
    counterfactual,
    load_class_means,
)

router = APIRouter(prefix="/api/v1", tags=["explain"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    **INPUT_ERRORS,
    422: {
        "model": ErrorResponse,
        "description": "bad input, no digit found, or the model already reads the target",
    },
    503: {"model": ErrorResponse, "description": "the class-means file is missing or corrupt"},
}


@cache
def cached_class_means(path: Path) -> np.ndarray:
    """Read once per path; read-only afterwards, so every request thread shares it."""
    means = load_class_means(path)
    means.flags.writeable = False
    return means


def get_class_means(settings: SettingsDep) -> np.ndarray:
    try:
        return cached_class_means(settings.class_means)
    except ValueError as error:
        raise HTTPException(
            503,
            f"counterfactuals need the class-means file: {error}; "
            "write it with `python scripts/class_means.py`",
        ) from error


ClassMeansDep = Annotated[np.ndarray, Depends(get_class_means)]


@router.post("/counterfactual", response_model=CounterfactualResponse, responses=RESPONSES)
def post_counterfactual(
    request: CounterfactualRequest,
    models: ModelsDep,
    settings: SettingsDep,
    means: ClassMeansDep,
) -> ORJSONResponse:
    """Edit the input with pen strokes until the model reads `target`: the edit, both readings."""
    predictor = models.get(request.model)
    clock = Clock()
    image, _ = image_or_pixels(request.image, request.pixels, settings, clock)
    options = CounterfactualOptions(
        max_steps=request.max_steps, time_limit=settings.counterfactual_seconds
    )
    try:
        found = counterfactual(predictor.model, image, request.target, means, options)
    except TargetIsCurrentLabelError as error:
        raise InputError(422, str(error)) from None
    clock.lap("search")
    return ORJSONResponse(
        {
            "target": found.target,
            "reached": found.reached,
            "steps": found.steps,
            "pixels": encode_map(found.pixels, request.encoding),
            "delta": encode_map(found.delta, request.encoding),
            "label": found.label,
            "probabilities": found.probabilities.astype(np.float64).tolist(),
            "original": {
                "label": found.original_label,
                "probabilities": found.original_probabilities.astype(np.float64).tolist(),
            },
            "l1": round(found.l1, 4),
            "l2": round(found.l2, 4),
            "timings_ms": clock.report(),
        }
    )
