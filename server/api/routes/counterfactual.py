"""Counterfactuals: "what would make it a 3", as the pen strokes that make the model read a 3.
The same concept at three levels: the search (server/explain/), this route, its schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from server.api.compute.work import answer_counterfactual, class_means
from server.api.deps import ComputeDep, SettingsDep
from server.api.schemas.common import INPUT_ERRORS, error
from server.api.schemas.counterfactual import CounterfactualRequest, CounterfactualResponse

router = APIRouter(prefix="/api/v1", tags=["explain"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    **INPUT_ERRORS,
    422: error("bad input, no digit found, or the model already reads the target"),
    503: error(
        "the class-means file is missing or corrupt, too many searches are running or waiting, "
        "or too many requests are in progress (those two with Retry-After)"
    ),
}


@router.post("/counterfactual", response_model=CounterfactualResponse, responses=RESPONSES)
async def post_counterfactual(
    request: CounterfactualRequest, compute: ComputeDep, settings: SettingsDep
) -> Response:
    """Edit the input with pen strokes until the model reads `target`: the edit, both readings.
    A search of seconds: it runs in the heavy lane, 503 with Retry-After when that is full."""
    class_means(settings)  # 503 in words before the search waits its turn
    return await compute.run(answer_counterfactual, request, model=request.model, heavy=True)
