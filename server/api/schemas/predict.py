"""Requests and answers of the predict routes (routes/predict.py): one image or a batch."""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.api.schemas.arrays import SIDE, ArrayOut, MapOut, MaskOut, Pixels
from server.api.schemas.atlas import NeighborOut, PlaceOut
from server.api.schemas.common import model_name_field
from server.explain.edits import Ablation, Edits, KernelEdit


def check_pixels(rows: Pixels) -> Pixels:
    """28 rows of 28 finite numbers in [0, 1]: the MNIST convention, white ink on black."""
    if len(rows) != SIDE or any(len(row) != SIDE for row in rows):
        widths = sorted({len(row) for row in rows})
        raise ValueError(
            f"pixels must be {SIDE} rows of {SIDE} numbers, got {len(rows)} rows of {widths}"
        )
    grid = np.asarray(rows, dtype=np.float64)  # (28, 28)
    bad = np.argwhere(~((grid >= 0.0) & (grid <= 1.0)))  # NaN fails both comparisons
    if len(bad):
        y, x = (int(i) for i in bad[0])
        raise ValueError(
            f"pixels[{y}][{x}] is {grid[y, x]}; every pixel must be a number in [0, 1]"
        )
    return rows


class PredictOptions(BaseModel):
    """Which model, and what to return besides the label and probabilities."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = model_name_field()

    activations: bool = Field(False, description="every layer's output, and pooling masks")
    neighbors: bool = Field(
        False,
        description="the 8 atlas digits nearest to the input in the layer before the output, "
        "and its place on the atlas's 2-D map (a model with an atlas only: 503 without)",
    )
    saliency: bool = Field(False, description="a 28x28 map of what drove the target's score")
    saliency_method: Literal["gradient", "occlusion"] = Field(
        "gradient",
        description="gradient: d(target logit)/d(input) times the input; occlusion: the drop of "
        "p(target) when a 4x4 patch (stride 2, filled with 0) covers each pixel, averaged",
    )
    target: int | None = Field(
        None, ge=0, le=9, description="class to explain; default: the predicted one"
    )
    encoding: Literal["list", "base64", "uint8"] = Field(
        "list",
        description="arrays as nested lists, base64 (float16 maps, uint8 masks), or uint8 "
        "(maps quantised to bytes with a scale and offset, masks packed to bits)",
    )


class AblationIn(BaseModel):
    """Output channels (units, for vectors) of one layer to set to 0."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(description="a layer name from /api/v1/model, e.g. conv1 or fc1")
    channels: list[int] = Field(
        description="channel indices of the layer's output; repeats count once; at most 256 "
        "distinct; 422 when one is out of range"
    )


class KernelEditIn(BaseModel):
    """A new filter for one output channel of a conv layer."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(description="a conv layer, e.g. conv1")
    channel: int = Field(description="which filter (output channel) to replace")
    weight: list[list[list[float]]] = Field(
        description="[C_in, kh, kw], as /model/layers/{name}/weights gives one filter; "
        "finite numbers within +-1000"
    )
    bias: float | None = Field(None, description="the filter's new bias; default: unchanged")


class EditsIn(BaseModel):
    """Changes to the network for this request only."""

    model_config = ConfigDict(extra="forbid")

    ablate: list[AblationIn] = Field(default_factory=list)
    kernels: list[KernelEditIn] = Field(default_factory=list)

    def to_edits(self) -> Edits:
        return Edits(
            ablate=[Ablation(a.layer, a.channels) for a in self.ablate],
            kernels=[KernelEdit(k.layer, k.channel, k.weight, k.bias) for k in self.kernels],
        )


# A 28x28 PNG of a 7, as a canvas would send it: the examples of the schema
EXAMPLE_IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAR0lEQVR42mNgGGSAEUr/"
    "xybMhF3Pf3ySjCjGomnDaSxcDpexuCQRGknUiaSRNJ3IGknSiaKRFJ2oGknQiaaReJ3/sccgfQEAyUkLJcps4wQAAAAA"
    "SUVORK5CYII="
)
# Exactly one of the two: `image` a string, or `pixels` an array (the other absent or null)
EXACTLY_ONE_INPUT: dict[str, Any] = {
    "oneOf": [
        {"required": ["image"], "properties": {"image": {"type": "string"}}},
        {"required": ["pixels"], "properties": {"pixels": {"type": "array"}}},
    ]
}


class ImageOrPixels(BaseModel):
    """Exactly one of `image` or `pixels`: the input of every request that reads one digit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=EXACTLY_ONE_INPUT)

    image: str | None = Field(
        None,
        description="base64 or data URL of a PNG, JPEG, WebP, BMP or GIF; 422 when it is not "
        "one or holds no digit",
        examples=[EXAMPLE_IMAGE],
    )
    pixels: Pixels | None = Field(None, description="28x28 numbers in [0, 1], white ink on black")

    @field_validator("pixels")
    @classmethod
    def _pixels_shape_and_range(cls, rows: Pixels | None) -> Pixels | None:
        return None if rows is None else check_pixels(rows)

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        if (self.image is None) == (self.pixels is None):
            raise ValueError("send exactly one of 'image' (base64 or data URL) or 'pixels' (28x28)")
        return self


class PredictRequest(PredictOptions, ImageOrPixels):
    """Exactly one of `image` or `pixels`, plus options."""

    edits: EditsIn | None = Field(
        None, description="ablations and kernel edits applied to this request only"
    )
    steps: bool = Field(
        False, description="the preprocessing one step at a time, each image <= 64 px a side"
    )


MAX_BATCH = 256  # the schema's maxItems; server/api/openapi.py states the configured one
EXACTLY_ONE_BATCH: dict[str, Any] = {
    "oneOf": [
        {"required": ["images"], "properties": {"images": {"type": "array"}}},
        {"required": ["pixels"], "properties": {"pixels": {"type": "array"}}},
    ]
}


class BatchRequest(BaseModel):
    """Up to 256 images or pixel grids, classified in one forward pass."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=EXACTLY_ONE_BATCH)

    model: str | None = model_name_field()
    images: list[str] | None = Field(
        None,
        description="base64 or data URLs, as /predict's `image`",
        json_schema_extra={"maxItems": MAX_BATCH},
        examples=[[EXAMPLE_IMAGE]],
    )
    pixels: list[Pixels] | None = Field(
        None,
        description="28x28 grids, as /predict's `pixels`",
        json_schema_extra={"maxItems": MAX_BATCH},
    )

    @field_validator("pixels")
    @classmethod
    def _each_grid(cls, grids: list[Pixels] | None) -> list[Pixels] | None:
        return None if grids is None else [check_pixels(g) for g in grids]

    @model_validator(mode="after")
    def _exactly_one_input(self) -> BatchRequest:
        if (self.images is None) == (self.pixels is None):
            raise ValueError("send exactly one of 'images' or 'pixels'")
        return self


class Timings(BaseModel):
    decode: float
    preprocess: float
    forward: float
    total: float


class LayerOut(BaseModel):
    name: str
    kind: str
    shape: list[int] = Field(description="[C, H, W] for maps, [F] for vectors")
    data: MapOut
    mask: MaskOut | None = Field(
        None, description="max-pool only: the input's shape, 1 where a window's max was taken"
    )


class Baseline(BaseModel):
    """The prediction of the network as served, beside an edited one."""

    label: int
    probabilities: list[float]


class StepOut(BaseModel):
    name: str = Field(description="decoded, ink, cleaned, cropped, scaled, centred (or pixels)")
    note: str = Field(description="what this step did, in one sentence")
    image: ArrayOut = Field(description="the image after this step, at most 64 px a side")


class PredictResponse(BaseModel):
    label: int
    probabilities: list[float]
    input: MapOut = Field(description="the 28x28 image the network saw")
    timings_ms: Timings
    model: str = Field(description="prefix of the weights' SHA-256")
    digit_score: float = Field(
        description="how much the input looks like the digits the model was trained on; higher "
        "= more digit-like (see docs/api-contract.md for how each model computes it)"
    )
    is_digit: bool = Field(
        description="digit_score at or above the model's threshold; false: probably not a digit"
    )
    layers: list[LayerOut] | None = None
    saliency: MapOut | None = None
    target: int | None = None
    baseline: Baseline | None = Field(None, description="with edits: the unedited prediction")
    steps: list[StepOut] | None = Field(None, description="with steps: the preprocessing stages")
    neighbors: list[NeighborOut] | None = Field(None, description="with neighbors: nearest first")
    embedding: PlaceOut | None = Field(None, description="with neighbors: where it lands")


class BatchResponse(BaseModel):
    labels: list[int]
    probabilities: list[list[float]]
    digit_scores: list[float] = Field(description="each item's digit_score, as on /predict")
    is_digit: list[bool] = Field(description="each item's is_digit, as on /predict")
