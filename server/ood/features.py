"""Which layers' outputs describe an input, and reading them from a trace.

Works for any architecture: the feature vector is the input of the last dense layer, read
before the activations and dropout that feed it (a ReLU's zeros hide how far off an input is),
and every activation map of the convolutional part contributes its channel means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.cnn import Dense, Sequential, Trace

ELEMENTWISE = frozenset({"relu", "tanh", "sigmoid", "dropout"})  # walked back over
ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid"})  # their maps are pooled to channel means


@dataclass(frozen=True)
class Source:
    """A layer whose output is a feature: as it is (a vector), or pooled to channel means."""

    layer: str
    pooled: bool

    def width(self, model: Sequential) -> int:
        """D: how many numbers this source gives per input."""
        shape = model.output_shapes[[layer.name for layer in model.layers].index(self.layer)]
        return shape[-1] if self.pooled else int(np.prod(shape))

    def read(self, output: np.ndarray) -> np.ndarray:
        """(N, H, W, C) -> (N, C) channel means when pooled; (N, ...) -> (N, D) otherwise."""
        if self.pooled:
            # What output.mean(axis=(1, 2)) does, bit for bit (the same row-by-row sums, then a
            # division by the count in float64 rounded back), without its Python wrapper.
            n, h, w, c = output.shape
            sums = np.add.reduce(output.reshape(n, h * w, c), axis=1)  # (N, C)
            return np.true_divide(sums, np.intp(h * w), out=sums, casting="unsafe")
        return output.reshape(len(output), -1)  # (N, D)


def feature_sources(model: Sequential) -> list[Source]:
    """The penultimate features first, then each activation map's channel means, in order."""
    dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
    if not dense:
        names = [layer.name for layer in model.layers]
        raise ValueError(f"the network has no dense layer to read features from; layers {names}")
    index = dense[-1] - 1
    while index >= 0 and model.layers[index].kind in ELEMENTWISE:
        index -= 1
    sources = [] if index < 0 else [Source(model.layers[index].name, pooled=False)]
    for layer, shape in zip(model.layers, model.output_shapes, strict=True):
        if layer.kind in ACTIVATIONS and len(shape) == 3:
            sources.append(Source(layer.name, pooled=True))
    return sources


def outputs_of_trace(trace: Trace, names: set[str]) -> dict[str, np.ndarray]:
    """The named layers' outputs (as Sequential.forward_keeping gives them), from a trace that
    already holds them."""
    return {t.name: t.output for t in trace.layers if t.name in names}
