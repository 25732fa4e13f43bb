"""Request and response models of POST /api/v1/counterfactual."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.api.schemas import ArrayOut, Pixels, check_pixels, model_name_field

MAX_STEPS = 1000


class CounterfactualRequest(BaseModel):
    """Exactly one of `image` or `pixels`, the digit to turn it into, and how long to try."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = model_name_field()
    image: str | None = Field(
        None, description="base64 or data URL of a PNG, JPEG, WebP, BMP or GIF"
    )
    pixels: Pixels | None = Field(None, description="28x28 numbers in [0, 1], white ink on black")
    target: int = Field(ge=0, le=9, description="the digit the edited input should read as")
    max_steps: int = Field(
        60, ge=1, le=MAX_STEPS, description="pen strokes added or erased, at most"
    )
    encoding: Literal["list", "base64"] = Field(
        "list", description="arrays as nested lists or base64"
    )

    @field_validator("pixels")
    @classmethod
    def _pixels_shape_and_range(cls, rows: Pixels | None) -> Pixels | None:
        return None if rows is None else check_pixels(rows)

    @model_validator(mode="after")
    def _exactly_one_input(self) -> CounterfactualRequest:
        if (self.image is None) == (self.pixels is None):
            raise ValueError("send exactly one of 'image' (base64 or data URL) or 'pixels' (28x28)")
        return self


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
