"""Fully connected layers and the reshape that feeds them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Layer, Params


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in NHWC order."""

    kind = "flatten"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        return grad_out.reshape(cache), {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)


class Dense(Layer):
    """y = x @ W + b with W of shape (in_features, out_features)."""

    kind = "dense"

    def __init__(
        self,
        name: str,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(name)
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bias
        rng = rng or np.random.default_rng(0)
        scale = np.sqrt(2.0 / in_features)
        self.params["weight"] = (rng.standard_normal((in_features, out_features)) * scale).astype(
            np.float32
        )
        if bias:
            self.params["bias"] = np.zeros(out_features, dtype=np.float32)

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.name}: expected input (N, {self.in_features}), got {x.shape}")
        out = x @ self.params["weight"]
        if self.bias:
            out += self.params["bias"]
        return out, x

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        grads = self.parameter_gradients(grad_out, cache)
        return grad_out @ self.params["weight"].T, grads

    def parameter_gradients(self, grad_out: Array, cache: Any) -> Params:
        x = cache
        grads: Params = {"weight": x.T @ grad_out}
        if self.bias:
            grads["bias"] = grad_out.sum(axis=0)
        return grads

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.out_features,)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
        }
