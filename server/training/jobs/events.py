"""A job's event data as JSON text, written once where the event is made: the API relays the
text as it is (to every stream of a job, on any replica), so nothing is encoded twice."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encoded_array(array: np.ndarray) -> dict[str, Any]:
    """{dtype, shape, data}: little-endian float32 bytes in base64, as the API encodes weights."""
    values = np.ascontiguousarray(array, dtype="<f4")
    return {
        "dtype": values.dtype.name,
        "shape": list(values.shape),
        "data": base64.b64encode(values.tobytes()).decode("ascii"),
    }


def event_json(data: dict[str, Any]) -> str:
    """The event's JSON, kernels as base64 float32 ({dtype, shape, data})."""
    if "kernels" in data:
        kernels = {name: encoded_array(k) for name, k in data["kernels"].items()}
        data = {**data, "kernels": kernels}
    return orjson.dumps(data, option=OPTIONS).decode()
