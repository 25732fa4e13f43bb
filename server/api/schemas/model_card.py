"""The model card and the model list (routes/model_card.py, routes/models.py): architecture,
metrics, and a layer's weights."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from server.api.schemas.arrays import ArrayOut


class LayerInfoOut(BaseModel):
    name: str
    kind: str
    output_shape: list[int]
    parameters: int
    kernel_size: int | None
    stride: int | None
    padding: str | int | None


class ModelSummary(BaseModel):
    """One row of GET /api/v1/models."""

    name: str = Field(description="the weights file's stem; what `model` fields take")
    default: bool = Field(description="the model a request gets when it names none")
    sha256: str
    parameters: int
    test_accuracy: float | None = Field(description="on MNIST's 10,000 test images, if stored")
    layers: list[str] = Field(description="layer kinds in order, ending with softmax")


class ModelResponse(BaseModel):
    name: str = Field(description="the model's name, as `model` fields take it")
    input_shape: list[int]
    layers: list[LayerInfoOut]
    total_parameters: int
    weights_sha256: str
    atlas: bool = Field(description="whether the atlas routes answer for this model")
    metrics: dict[str, Any]


class LayerWeightsResponse(BaseModel):
    name: str
    kind: str
    weight: ArrayOut | None
    bias: ArrayOut | None
