"""Request and response models of POST /api/v1/counterfactual (route: routes/counterfactual.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.api.schemas.arrays import ArrayOut
from server.api.schemas.common import model_name_field
from server.api.schemas.predict import ImageOrPixels

MAX_STEPS = 1000


class CounterfactualRequest(ImageOrPixels):
    """Exactly one of `image` or `pixels`, the digit to turn it into, and how long to try."""

    model: str | None = model_name_field()
    target: int = Field(ge=0, le=9, description="the digit the edited input should read as")
    max_steps: int = Field(
        60, ge=1, le=MAX_STEPS, description="pen strokes added or erased, at most"
    )
    encoding: Literal["list", "base64"] = Field(
        "list", description="arrays as nested lists or base64"
    )


class Reading(BaseModel):
    label: int
    probabilities: list[float]


class CounterfactualTimings(BaseModel):
    decode: float
    preprocess: float
    search: float
    total: float


class CounterfactualResponse(BaseModel):
    target: int
    reached: bool = Field(description="the model reads the edited input as `target`, p > 0.5")
    steps: int = Field(description="pen strokes applied")
    pixels: ArrayOut = Field(description="the edited 28x28 input")
    delta: ArrayOut = Field(description="28x28 signed change: pixels minus the original")
    label: int = Field(description="the model's reading of the edited input")
    probabilities: list[float] = Field(description="of the edited input")
    original: Reading = Field(description="the model's reading of the unedited input")
    l1: float = Field(description="sum of |delta|")
    l2: float = Field(description="square root of the sum of delta squared")
    timings_ms: CounterfactualTimings
