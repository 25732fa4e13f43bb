"""Arrays in answers: nested lists, base64 bytes, or quantised bytes, by the request's encoding."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

SIDE = 28
PIXELS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": SIDE,
    "maxItems": SIDE,
    "items": {
        "type": "array",
        "minItems": SIDE,
        "maxItems": SIDE,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "description": "28 rows of 28 numbers in [0, 1], white ink on black (MNIST's convention)",
}
# Checked by check_pixels (schemas/predict.py), one message naming the first bad pixel; the
# schema says the same to a client
Pixels = Annotated[list[list[float]], WithJsonSchema(PIXELS_SCHEMA)]


class EncodedArray(BaseModel):
    """An array packed as base64 of its little-endian, C-order bytes."""

    dtype: Literal["float16", "float32", "uint8"]
    shape: list[int]
    data: str = Field(description="base64 of the raw bytes")


class Float16Map(BaseModel):
    """`encoding: "base64"`: a float map as float16, little-endian, C order."""

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["float16"]
    shape: list[int]
    data: str = Field(description="base64 of 2 bytes per element")


class ByteMask(BaseModel):
    """`encoding: "base64"`: a 0/1 mask, one byte per element, C order."""

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["uint8"]
    shape: list[int]
    data: str = Field(description="base64 of one byte (0 or 1) per element")


class QuantizedMap(BaseModel):
    """`encoding: "uint8"`: a float map as bytes, value ~= offset + scale * byte."""

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["uint8"]
    shape: list[int]
    data: str = Field(description="base64 of one byte per element, C order, rounded to nearest")
    scale: float = Field(
        description="(max - min) / 255, or / 254 when the array spans 0; 0 when it is constant"
    )
    offset: float = Field(
        description="the array's minimum, or, when it spans 0, the whole number of steps below 0 "
        "nearest it (so 0 is a byte exactly)"
    )


class BitMask(BaseModel):
    """`encoding: "uint8"`: a 0/1 mask as bits, 8 elements a byte."""

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["bit"]
    shape: list[int]
    data: str = Field(
        description="base64 of numpy.packbits(mask.ravel()): C order, first element in the "
        "most significant bit, the last byte padded with zeros"
    )


ArrayOut = EncodedArray | list[Any]  # weights
MapOut = Float16Map | QuantizedMap | list[Any]  # a prediction's float arrays, by encoding
MaskOut = ByteMask | BitMask | list[Any]  # a prediction's pool masks, by encoding
