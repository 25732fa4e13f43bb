"""Saliency maps: which input pixels a class score rests on, by gradient or by occlusion."""

from __future__ import annotations

from typing import Literal

import numpy as np

from server.cnn import Sequential, Trace
from server.explain.occlusion import occlusion_map

SaliencyMethod = Literal["gradient", "occlusion"]


def gradient_times_input(model: Sequential, trace: Trace, target: int) -> np.ndarray:
    """(H, W): d(target logit)/d(input) times the input, for the one image `model` traced."""
    grad_logits = np.zeros_like(trace.logits)
    grad_logits[0, target] = 1.0
    grad_input, _ = model.backward(grad_logits, trace.caches)
    return (grad_input * trace.input)[0, :, :, 0]


def saliency_for(
    model: Sequential, trace: Trace, target: int, method: SaliencyMethod
) -> np.ndarray:
    """(H, W) map for `target` by `method`; `trace` is `model`'s trace of one image."""
    if method == "occlusion":
        return occlusion_map(model, trace.input[0, :, :, 0], target)
    return gradient_times_input(model, trace, target)
