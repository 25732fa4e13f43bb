"""Element-wise non-linearities."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Layer, Params


class ReLU(Layer):
    """max(x, 0); the gradient at exactly 0 is 0, as in PyTorch."""

    kind = "relu"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        # Against an array of zeros, not the scalar 0: numpy's SIMD loop then runs (docs/speed.md)
        # on a conv's output; the same values, NaN kept and -0.0 made +0.0 either way.
        out = np.zeros_like(x)
        np.maximum(x, out, out=out)
        return out, out  # out > 0 exactly where x > 0, so the output is the cache

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        return grad_out * (cache > 0), {}  # a bool factor, cheaper than np.where (docs/speed.md)


class Tanh(Layer):
    """tanh(x), LeNet's squashing non-linearity; d/dx = 1 - tanh(x)**2."""

    kind = "tanh"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out = np.tanh(x)
        return out, out  # the derivative needs only the output

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        return grad_out * (1 - cache * cache), {}


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), written as (1 + tanh(x/2)) / 2 so large |x| never overflows exp."""

    kind = "sigmoid"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        half = x.dtype.type(0.5)
        out = half + half * np.tanh(half * x)
        return out, out  # d/dx = s (1 - s)

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        return grad_out * (cache * (1 - cache)), {}
