"""Element-wise non-linearities."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Layer, Params


class Activation(Layer):
    """An element-wise function whose backward needs only its output."""

    def forward_in_place(self, x: Array) -> tuple[Array, Any]:
        """The same, written over `x`: for an input nobody else holds (a conv's fresh output),
        which saves allocating, and first touching, an array of its size."""
        raise NotImplementedError


class ReLU(Activation):
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

    def forward_in_place(self, x: Array) -> tuple[Array, Any]:
        np.maximum(x, x.dtype.type(0), out=x)
        return x, x

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        if cache is FOLDED:
            return grad_out, {}
        return grad_out * (cache > 0), {}  # a bool factor, cheaper than np.where (docs/speed.md)


FOLDED = object()
"""A ReLU's cache when the max-pool after it ran first and applied the ReLU's gradient factor
itself (max-pool and ReLU commute; server/cnn/fusion.py): its backward passes the gradient on."""


class Tanh(Activation):
    """tanh(x), LeNet's squashing non-linearity; d/dx = 1 - tanh(x)**2."""

    kind = "tanh"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out = np.tanh(x)
        return out, out  # the derivative needs only the output

    def forward_in_place(self, x: Array) -> tuple[Array, Any]:
        np.tanh(x, out=x)
        return x, x

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        return grad_out * (1 - cache * cache), {}


class Sigmoid(Activation):
    """1 / (1 + exp(-x)), written as (1 + tanh(x/2)) / 2 so large |x| never overflows exp."""

    kind = "sigmoid"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        half = x.dtype.type(0.5)
        out = half + half * np.tanh(half * x)
        return out, out  # d/dx = s (1 - s)

    def forward_in_place(self, x: Array) -> tuple[Array, Any]:
        half = x.dtype.type(0.5)
        x *= half
        np.tanh(x, out=x)
        x *= half
        x += half  # the same operations, in the same order, as forward
        return x, x

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        return grad_out * (cache * (1 - cache)), {}
