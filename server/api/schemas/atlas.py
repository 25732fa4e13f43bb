"""Answers of the atlas routes (routes/atlas.py) and predict's neighbours: what a filter looks
for, the class inputs, the 2-D map and the digits behind it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.api.schemas.arrays import MapOut


class DigitOut(BaseModel):
    """A test digit the atlas holds."""

    index: int = Field(description="its index in MNIST's test set")
    label: int
    predicted: int = Field(description="what the model reads")
    probabilities: list[float]
    thumbnail: MapOut = Field(description="28x28 pixels in [0, 1], white ink on black")


class NeighborOut(BaseModel):
    index: int
    label: int
    predicted: int
    distance: float = Field(description="Euclidean, between the embedded layer's vectors")
    thumbnail: MapOut


class PlaceOut(BaseModel):
    x: float
    y: float
    layer: str = Field(description="the embedded layer")


class ExampleOut(BaseModel):
    index: int
    label: int
    predicted: int
    row: int = Field(description="where in the map the channel peaks on this digit")
    col: int
    value: float = Field(description="the map's value there")
    patch: MapOut = Field(description="the digit's pixels that unit sees")
    box: list[int] = Field(description="[top, left, bottom, right) of the patch in the input")


class ChannelResponse(BaseModel):
    layer: str
    map: str = Field(description="the layer whose values rank the examples")
    channel: int
    examples: list[ExampleOut] = Field(description="the 9 test digits that excite it most")
    ideal: MapOut = Field(description="an input optimised to excite the centre unit")
    ideal_box: list[int]
    ideal_value: float


class ClassInput(BaseModel):
    label: int
    image: MapOut
    probability: float


class ClassesResponse(BaseModel):
    classes: list[ClassInput]


class PointOut(BaseModel):
    x: float
    y: float
    index: int
    label: int
    predicted: int


class EmbeddingResponse(BaseModel):
    layer: str
    method: str = Field(description="tsne or pca")
    count: int
    points: list[PointOut]


class ConfusionResponse(BaseModel):
    true: int
    predicted: int
    count: int = Field(description="test digits in this cell of the confusion matrix")
    digits: list[DigitOut] = Field(description="those the atlas holds, most confident first")
