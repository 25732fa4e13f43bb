"""Inverted dropout: scales at training time so inference is the identity."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Layer, Params


class Dropout(Layer):
    """Zero each unit with probability `rate` while training, scale the rest by 1/(1-rate)."""

    kind = "dropout"
    mixes_batch = True

    def __init__(self, name: str, rate: float = 0.5) -> None:
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name}: rate must be in [0, 1), got {rate}")
        self.rate = rate

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        if not training or self.rate == 0.0:
            return x, None
        if rng is None:
            raise ValueError(f"{self.name}: training-mode dropout needs an rng")
        keep = rng.random(x.shape, dtype=np.float32) >= self.rate
        scale = x.dtype.type(1.0 / (1.0 - self.rate))
        mask = keep * scale  # (same shape as x), 0 or 1/(1-rate)
        return x * mask, mask

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        if cache is None:
            return grad_out, {}
        return grad_out * cache, {}

    def config(self) -> dict[str, Any]:
        return {"rate": self.rate}
