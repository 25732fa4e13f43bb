"""Arrays to JSON: nested lists, base64 of little-endian C-order bytes, or bytes quantised to
uint8 with bit-packed masks; always via orjson."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
import pybase64
from fastapi import Response

Encoding = Literal["list", "base64"]  # weights
PredictEncoding = Literal["list", "base64", "uint8"]  # predictions: maps may be quantised
ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
LEVELS = 255  # uint8: 256 levels, 255 steps between the minimum and the maximum
HALF, ZERO, TOP = np.float32(0.5), np.float32(0), np.float32(LEVELS + 1)  # float32 step bounds


def b64(array: np.ndarray) -> str:
    """Base64 text of an array's C-order bytes; SIMD base64, far faster than the standard
    library's on maps (docs/speed.md)."""
    return pybase64.b64encode_as_string(np.ascontiguousarray(array).data)  # no copy


def encode_array(array: np.ndarray, encoding: Encoding, wire_dtype: str = "<f2") -> Any:
    """Lists leave as float32/uint8 numbers; base64 packs into `wire_dtype` (float16 for maps)."""
    if encoding == "list":
        return np.ascontiguousarray(array)  # orjson writes it as nested lists
    packed = np.ascontiguousarray(array, dtype=np.dtype(wire_dtype))
    return {"dtype": packed.dtype.name, "shape": list(packed.shape), "data": b64(packed)}


def quantize(array: np.ndarray) -> dict[str, Any]:
    """A float array as uint8: value ~= offset + scale * byte, each byte rounded to nearest.

    offset = min and scale = (max - min) / 255, except for arrays spanning 0 (conv maps, scores):
    there scale = (max - min) / 254 and offset is the multiple of scale nearest min, so that 0 is
    a byte exactly (a switched-off map reads 0, not a fraction of a step) and every value still
    lies within scale / 2 of one. Reads `array` as it lies in memory (a channels-first view of a
    channels-last trace costs no copy); the only reordering is the C-order gather of the bytes.
    """
    least, most = np.minimum.reduce(array, axis=None), np.maximum.reduce(array, axis=None)
    low, high = float(least), float(most)
    scale, offset = (high - low) / LEVELS, low
    if low < 0 < high:
        scale = (high - low) / (LEVELS - 1)
        offset = -round(-low / scale) * scale  # within scale / 2 of low, a whole number of steps
    if scale > 0:
        shift, stretch = np.float32(offset), np.float32(1 / scale)
        if offset == 0:  # ReLU and pooled maps: x - 0 is x (and -0 ends as +0.5 either way)
            steps = np.multiply(array, stretch, dtype=np.float32)  # a pass fewer
        else:
            steps = np.subtract(array, shift, dtype=np.float32)  # laid out as `array`
            steps *= stretch
        steps += HALF  # then truncation rounds to nearest (halves up)
        # Each float32 step above is monotonic in the value, so the same steps of the minimum
        # and maximum bound every element's: inside [0, 256) the clip below changes no byte.
        first = (np.float32(least) - shift) * stretch + HALF
        last = (np.float32(most) - shift) * stretch + HALF
        if not (first >= ZERO and last < TOP):  # also NaN, infinite stretch
            np.clip(steps, 0, LEVELS, out=steps)  # float32 rounding at the ends of the range
        levels = steps.astype(np.uint8)
    else:  # constant (or empty): every byte 0, the value is the offset
        scale, levels = 0.0, np.zeros(array.shape, dtype=np.uint8)
    return {
        "dtype": "uint8",
        "shape": list(array.shape),
        "data": b64(levels),  # tobytes(): C order of the shape, whatever the memory layout
        "scale": scale,
        "offset": offset,
    }


def pack_bits(mask: np.ndarray) -> dict[str, Any]:
    """A 0/1 mask as bits: numpy.packbits of its C-order elements, first in the high bit."""
    return {"dtype": "bit", "shape": list(mask.shape), "data": b64(np.packbits(mask, axis=None))}


def encode_map(array: np.ndarray, encoding: PredictEncoding) -> Any:
    """A float map: float16 on the wire when packed, uint8 levels when quantised."""
    if encoding == "uint8":
        return quantize(array)
    return encode_array(array, encoding, "<f2")


def encode_mask(array: np.ndarray, encoding: PredictEncoding) -> Any:
    """A 0/1 mask: uint8 on the wire when packed, one bit an element when quantised."""
    if encoding == "uint8":
        return pack_bits(array)
    return encode_array(array, encoding, "u1")


class ORJSONResponse(Response):
    """JSON through orjson, numpy arrays included, without jsonable_encoder's walk of every
    value (docs/speed.md)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=ORJSON_OPTIONS)
