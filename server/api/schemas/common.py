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


class ValidationIssue(BaseModel):
    """One problem the request's validation found."""

    loc: list[str | int] = Field(description='where: e.g. ["body", "pixels", 3]')
    msg: str = Field(description="what was wrong")
    type: str = Field(description="pydantic's name for the kind of problem")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    detail: str = Field(description="what was wrong and what was expected, in words")
    errors: list[ValidationIssue] | None = Field(
        None, description="422 from the request's validation only: one entry per problem"
    )


def error(description: str) -> dict[str, Any]:
    """An entry of a route's `responses`: the error body (always JSON, even beside a stream or
    a download: server/api/openapi.py sees to the media type)."""
    return {"model": ErrorResponse, "description": description}


# what a route that reads an image can answer besides 200 (in OpenAPI's `responses`)
INPUT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error("no model of that name"),
    413: error("body or image too large (over 4096 px a side, a decompression bomb)"),
    415: error("an image type other than PNG, JPEG, WebP, BMP, GIF"),
    422: error("bad input, or no digit found in the image"),
}
