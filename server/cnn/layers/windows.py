"""What every pooling layer shares: (pool, pool) windows at a stride, no padding, and the views
of its input that window arithmetic works on."""

from __future__ import annotations

from typing import Any

from server.cnn.im2col import resolve_padding, window_slice
from server.cnn.layers.base import Array, Layer


class Pool2D(Layer):
    """Windows of pool_size x pool_size every `stride` cells (default: windows that tile)."""

    def __init__(self, name: str, pool_size: int = 2, stride: int | None = None) -> None:
        super().__init__(name)
        if pool_size < 1 or (stride is not None and stride < 1):
            raise ValueError(f"{name}: pool_size and stride must be >= 1")
        self.pool_size = pool_size
        self.stride = stride or pool_size

    @property
    def tiled(self) -> bool:
        """Windows that tile the input (the usual case) are worked on through a reshape."""
        return self.stride == self.pool_size

    def _offsets(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.pool_size) for j in range(self.pool_size)]

    def _tiles(self, x: Array, out_h: int, out_w: int) -> Array:
        """(N, H, W, C) -> (N, oh, p, ow, p, C), a view without the rows/cols no window covers."""
        n, _, _, c = x.shape
        p = self.pool_size
        return x[:, : out_h * p, : out_w * p].reshape(n, out_h, p, out_w, p, c)

    def _windows(self, x: Array, out_h: int, out_w: int) -> list[Array]:
        """One strided view per window offset, each (N, out_h, out_w, C)."""
        s = self.stride
        return [
            x[:, window_slice(i, s, out_h), window_slice(j, s, out_w), :]
            for i, j in self._offsets()
        ]

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = input_shape
        _, _, out_h = resolve_padding("valid", h, self.pool_size, self.stride)
        _, _, out_w = resolve_padding("valid", w, self.pool_size, self.stride)
        return (out_h, out_w, c)

    def config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "stride": self.stride}
