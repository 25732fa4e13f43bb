"""Max-pooling that remembers which input cell won each window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn.im2col import resolve_padding, window_slice
from server.cnn.layers.base import Array, Layer, Params


@dataclass(frozen=True)
class PoolCache:
    """Which cell won each window: a one-hot bool tiling, or an offset index per window."""

    winners: Array  # tiled: (N, oh, p, ow, p, C) bool; strided: (N, oh, ow, C) uint8 offset
    input_shape: tuple[int, ...]
    tiled: bool


class MaxPool2D(Layer):
    """Max over (pool, pool) windows; ties go to the first cell in row-major order.

    Windows that tile the input (stride == pool size, the usual case) are pooled through a
    reshape, with no copies; overlapping windows loop over the pool_size**2 window offsets.
    """

    kind = "maxpool2d"

    def __init__(self, name: str, pool_size: int = 2, stride: int | None = None) -> None:
        super().__init__(name)
        if pool_size < 1 or (stride is not None and stride < 1):
            raise ValueError(f"{name}: pool_size and stride must be >= 1")
        self.pool_size = pool_size
        self.stride = stride or pool_size

    def _offsets(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.pool_size) for j in range(self.pool_size)]

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out_h, out_w, _ = self.output_shape(x.shape[1:])
        if self.stride == self.pool_size:
            return self._forward_tiled(x, out_h, out_w)
        return self._forward_strided(x, out_h, out_w)

    def _tiles(self, x: Array, out_h: int, out_w: int) -> Array:
        """(N, H, W, C) -> (N, oh, p, ow, p, C), dropping rows/cols no window covers."""
        n, _, _, c = x.shape
        p = self.pool_size
        return x[:, : out_h * p, : out_w * p].reshape(n, out_h, p, out_w, p, c)

    def _forward_tiled(self, x: Array, out_h: int, out_w: int) -> tuple[Array, PoolCache]:
        p = self.pool_size
        tiles = self._tiles(x, out_h, out_w)
        rows = tiles[:, :, 0]  # (N, oh, ow, p, C): max over the window's rows ...
        for i in range(1, p):
            rows = np.maximum(rows, tiles[:, :, i])
        best = rows[:, :, :, 0]  # ... then over its columns: (N, oh, ow, C)
        for j in range(1, p):
            best = np.maximum(best, rows[:, :, :, j])
        winners = tiles == best[:, :, None, :, None, :]  # (N, oh, p, ow, p, C)
        if np.count_nonzero(winners) != best.size:  # a tie somewhere: keep the first only
            claimed = np.zeros(best.shape, dtype=bool)
            for i, j in self._offsets():
                cell = winners[:, :, i, :, j]
                cell &= ~claimed
                claimed |= cell
        return best, PoolCache(winners, x.shape, tiled=True)

    def _windows(self, x: Array, out_h: int, out_w: int) -> list[Array]:
        """One strided view per window offset, each (N, out_h, out_w, C)."""
        s = self.stride
        return [
            x[:, window_slice(i, s, out_h), window_slice(j, s, out_w), :]
            for i, j in self._offsets()
        ]

    def _forward_strided(self, x: Array, out_h: int, out_w: int) -> tuple[Array, PoolCache]:
        views = self._windows(x, out_h, out_w)
        best = views[0].copy() if len(views) == 1 else np.maximum(views[0], views[1])
        for view in views[2:]:
            np.maximum(best, view, out=best)
        # The winner is the first offset equal to the max: fill from the last offset back.
        winner = np.full(best.shape, len(views) - 1, dtype=np.uint8)
        for index in range(len(views) - 2, -1, -1):
            np.copyto(winner, np.uint8(index), where=views[index] == best)
        return best, PoolCache(winner, x.shape, tiled=False)

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        grad_in = np.zeros(cache.input_shape, dtype=grad_out.dtype)
        zero = grad_out.dtype.type(0)
        _, out_h, out_w, _ = grad_out.shape
        if cache.tiled:
            routed = np.where(cache.winners, grad_out[:, :, None, :, None, :], zero)
            self._tiles(grad_in, out_h, out_w)[...] = routed
            return grad_in, {}
        for index, region in enumerate(self._windows(grad_in, out_h, out_w)):
            region += np.where(cache.winners == index, grad_out, zero)
        return grad_in, {}

    def mask(self, cache: Any) -> Array:
        """(N, H, W, C) uint8, 1 where a cell was the maximum of some window."""
        mask = np.zeros(cache.input_shape, dtype=np.uint8)
        if cache.tiled:
            _, out_h, _, out_w, _, _ = cache.winners.shape
            self._tiles(mask, out_h, out_w)[...] = cache.winners
            return mask
        _, out_h, out_w, _ = cache.winners.shape
        for index, region in enumerate(self._windows(mask, out_h, out_w)):
            region |= cache.winners == index
        return mask

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = input_shape
        _, _, out_h = resolve_padding("valid", h, self.pool_size, self.stride)
        _, _, out_w = resolve_padding("valid", w, self.pool_size, self.stride)
        return (out_h, out_w, c)

    def config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "stride": self.stride}
