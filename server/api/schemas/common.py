"""What every route shares: the error body, health, and the `model` field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


def model_name_field() -> Any:
    """The `model` field every request that uses a model takes."""
    return Field(
        None,
        max_length=200,
        description="a model name from GET /api/v1/models (or training:<id>[@<step>]); "
        "absent: the default model",
    )


class Health(BaseModel):
    status: Literal["ok"]


class ErrorResponse(BaseModel):
    detail: str


# what a route that reads an image can answer besides 200 (in OpenAPI's `responses`)
INPUT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no model of that name"},
    413: {"model": ErrorResponse, "description": "body, image or batch too large"},
    415: {
        "model": ErrorResponse,
        "description": "an image type other than PNG, JPEG, WebP, BMP, GIF",
    },
    422: {"model": ErrorResponse, "description": "bad input, or no digit found in the image"},
}
