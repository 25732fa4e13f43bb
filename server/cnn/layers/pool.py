"""Max-pooling that remembers which input cell won each window."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.im2col import resolve_padding, window_slice
from server.cnn.layers.base import Array, Layer, Params


class MaxPool2D(Layer):
    """Max over (pool, pool) windows; ties go to the first cell in row-major order."""

    kind = "maxpool2d"

    def __init__(self, name: str, pool_size: int = 2, stride: int | None = None) -> None:
        super().__init__(name)
        if pool_size < 1 or (stride is not None and stride < 1):
            raise ValueError(f"{name}: pool_size and stride must be >= 1")
        self.pool_size = pool_size
        self.stride = stride or pool_size

    def _offsets(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.pool_size) for j in range(self.pool_size)]

    def _windows(self, x: Array, out_h: int, out_w: int) -> list[Array]:
        """One strided view per window offset, each (N, out_h, out_w, C)."""
        s = self.stride
        return [
            x[:, window_slice(i, s, out_h), window_slice(j, s, out_w), :]
            for i, j in self._offsets()
        ]

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out_h, out_w, _ = self.output_shape(x.shape[1:])
        views = self._windows(x, out_h, out_w)
        best = views[0].copy() if len(views) == 1 else np.maximum(views[0], views[1])
        for view in views[2:]:
            np.maximum(best, view, out=best)
        # The winner is the first offset equal to the max: fill from the last offset back.
        winner = np.full(best.shape, len(views) - 1, dtype=np.uint8)
        for index in range(len(views) - 2, -1, -1):
            np.copyto(winner, np.uint8(index), where=views[index] == best)
        return best, (winner, x.shape)

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        winner, input_shape = cache
        grad_in = np.zeros(input_shape, dtype=grad_out.dtype)
        zero = grad_out.dtype.type(0)
        for index, region in enumerate(self._windows(grad_in, *winner.shape[1:3])):
            region += np.where(winner == index, grad_out, zero)
        return grad_in, {}

    def mask(self, cache: Any) -> Array:
        """(N, H, W, C) uint8, 1 where a cell was the maximum of some window."""
        winner, input_shape = cache
        mask = np.zeros(input_shape, dtype=np.uint8)
        for index, region in enumerate(self._windows(mask, *winner.shape[1:3])):
            region |= winner == index
        return mask

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = input_shape
        _, _, out_h = resolve_padding("valid", h, self.pool_size, self.stride)
        _, _, out_w = resolve_padding("valid", w, self.pool_size, self.stride)
        return (out_h, out_w, c)

    def config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "stride": self.stride}
