"""The uint8 wire encoding against the implementation it replaced, kept here as the reference:
the same bytes, scale and offset for every array, whatever its memory layout or values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from server.api.encoding import LEVELS, b64, pack_bits, quantize
from server.inference import Predictor


def reference_quantize(array: np.ndarray) -> dict[str, Any]:
    """encoding.quantize before the memory-order pass and the skipped clip, verbatim."""
    low, high = float(array.min()), float(array.max())
    scale, offset = (high - low) / LEVELS, low
    if low < 0 < high:
        scale = (high - low) / (LEVELS - 1)
        offset = -round(-low / scale) * scale
    if scale > 0:
        steps = np.subtract(array, np.float32(offset), dtype=np.float32)
        steps *= np.float32(1 / scale)
        steps += np.float32(0.5)
        np.clip(steps, 0, LEVELS, out=steps)
        levels = steps.astype(np.uint8)
    else:
        scale, levels = 0.0, np.zeros(array.shape, dtype=np.uint8)
    return {
        "dtype": "uint8",
        "shape": list(array.shape),
        "data": b64(levels),
        "scale": scale,
        "offset": offset,
    }


def reference_pack_bits(mask: np.ndarray) -> dict[str, Any]:
    """encoding.pack_bits before it, verbatim."""
    return {"dtype": "bit", "shape": list(mask.shape), "data": b64(np.packbits(mask, axis=None))}


def wire(encoded: dict[str, Any]) -> bytes:
    """What the client reads (NaN, which equals nothing, as null)."""
    return orjson.dumps(encoded)


def layouts(array: np.ndarray) -> list[np.ndarray]:
    """The same values laid out as a trace lays them, and as nothing does (gaps, reversals)."""
    channels_last = np.ascontiguousarray(np.moveaxis(array, 0, -1)) if array.ndim == 3 else array
    views = [array, np.ascontiguousarray(array), np.asfortranarray(array), array[::-1]]
    if array.ndim == 3:
        views.append(np.moveaxis(channels_last, -1, 0))  # (C, H, W) over (H, W, C) memory
        views.append(np.moveaxis(channels_last, -1, 0)[:, ::2])  # with gaps
    return views


def awkward_arrays() -> list[np.ndarray]:
    """Arrays whose ends sit where float32 rounding bites: ties, tiny and huge ranges, one sign."""
    rng = np.random.default_rng(8)
    arrays = [
        rng.normal(size=(32, 28, 28)).astype(np.float32),  # spans 0
        rng.uniform(0, 3, size=(64, 14, 14)).astype(np.float32),  # a relu map
        -rng.uniform(1, 2, size=(5, 7)).astype(np.float32),  # all below 0
        rng.normal(size=(128,)),  # float64 in
        np.linspace(-1, 253, 255, dtype=np.float32),  # whole steps, 0 among them
        np.linspace(-1.5, 253.5, 256, dtype=np.float32),  # every value a tie, min too
        np.linspace(-0.5, 254.5, 256, dtype=np.float32) * np.float32(1e-3),
        np.array([-1e-44, 0.0, 3e-45], dtype=np.float32),  # subnormal range: infinite stretch
        np.array([-3e38, 0.0, 3e38], dtype=np.float32),  # range near float32's limit
        np.array([1e6, 1e6 + 0.0625, 1e6 + 1], dtype=np.float32),  # few bits of resolution
        np.full((3, 4), 2.5, dtype=np.float32),  # constant
        np.zeros((2, 3, 3), dtype=np.float32),
        np.array([0.0, np.inf], dtype=np.float32),
        np.array([1.0, np.nan, 2.0], dtype=np.float32),
        np.maximum(rng.normal(size=(16, 7, 7)), 0).astype(np.float32),  # ReLU: offset 0
        np.array([-0.0, 0.0, 1.0, 2.5], dtype=np.float32),  # offset -0.0
        np.array([-0.0, 1e-44, 3e-45], dtype=np.float32),  # offset -0.0, infinite stretch
        np.array([0.0, np.nan, 2.0], dtype=np.float32),
    ]
    for seed in range(300):  # random ends: many draws put the minimum near a half step
        local = np.random.default_rng(seed)
        low, width = local.normal() * 10 ** local.uniform(-6, 6), 10 ** local.uniform(-6, 6)
        arrays.append((low + width * local.random((4, 5, 6))).astype(np.float32))
    return arrays


AWKWARD = awkward_arrays()  # built once, for every case below


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, inf * 0 in the extremes
@pytest.mark.parametrize("index", range(len(AWKWARD)))
def test_quantize_equals_the_reference_in_every_layout(index: int) -> None:
    array = AWKWARD[index]
    for view in layouts(array):
        assert wire(quantize(view)) == wire(reference_quantize(view))


def test_quantize_equals_the_reference_on_a_real_trace(shipped_weights: Path) -> None:
    predictor = Predictor.from_file(shipped_weights)
    rng = np.random.default_rng(3)
    for image in (rng.random((28, 28), dtype=np.float32), np.zeros((28, 28), np.float32)):
        explained = predictor.explain(image, activations=True, saliency=True, target=None)
        assert explained.layers is not None
        assert explained.saliency is not None
        for array in [image, explained.saliency, *(layer.data for layer in explained.layers)]:
            assert wire(quantize(array)) == wire(reference_quantize(array))
        for layer in explained.layers:
            if layer.mask is not None:
                assert pack_bits(layer.mask) == reference_pack_bits(layer.mask)
