"""Average pooling: every cell of a window counts the same, so nothing is remembered but a shape."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.im2col import resolve_padding, window_slice
from server.cnn.layers.base import Array, Layer, Params


class AvgPool2D(Layer):
    """Mean over (pool, pool) windows, no padding (PyTorch's avg_pool2d with padding 0).

    Windows that tile the input (stride == pool size) are summed through a reshape; overlapping
    windows add one strided view per window offset. Rows and columns no window covers get no
    gradient, as in max-pooling.
    """

    kind = "avgpool2d"

    def __init__(self, name: str, pool_size: int = 2, stride: int | None = None) -> None:
        super().__init__(name)
        if pool_size < 1 or (stride is not None and stride < 1):
            raise ValueError(f"{name}: pool_size and stride must be >= 1")
        self.pool_size = pool_size
        self.stride = stride or pool_size

    def _tiles(self, x: Array, out_h: int, out_w: int) -> Array:
        """(N, H, W, C) -> (N, oh, p, ow, p, C), a view without the rows/cols no window covers."""
        n, _, _, c = x.shape
        p = self.pool_size
        return x[:, : out_h * p, : out_w * p].reshape(n, out_h, p, out_w, p, c)

    def _windows(self, x: Array, out_h: int, out_w: int) -> list[Array]:
        """One strided view per window offset, each (N, out_h, out_w, C)."""
        s, p = self.stride, self.pool_size
        return [
            x[:, window_slice(i, s, out_h), window_slice(j, s, out_w), :]
            for i in range(p)
            for j in range(p)
        ]

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out_h, out_w, _ = self.output_shape(x.shape[1:])
        scale = x.dtype.type(1.0 / self.pool_size**2)
        if self.stride == self.pool_size:
            tiles = self._tiles(x, out_h, out_w)
            total = tiles.sum(axis=(2, 4))  # (N, oh, ow, C)
        else:
            views = self._windows(x, out_h, out_w)
            total = views[0].copy()
            for view in views[1:]:
                total += view
        total *= scale
        return total, x.shape

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        input_shape = cache
        _, out_h, out_w, _ = grad_out.shape
        share = grad_out * grad_out.dtype.type(1.0 / self.pool_size**2)  # each cell's part
        grad_in = np.zeros(input_shape, dtype=grad_out.dtype)
        if self.stride == self.pool_size:
            # (N, oh, p, ow, p, C) view of grad_in: every cell of a window gets the same share
            self._tiles(grad_in, out_h, out_w)[...] = share[:, :, None, :, None, :]
        else:
            for region in self._windows(grad_in, out_h, out_w):
                region += share
        return grad_in, {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = input_shape
        _, _, out_h = resolve_padding("valid", h, self.pool_size, self.stride)
        _, _, out_w = resolve_padding("valid", w, self.pool_size, self.stride)
        return (out_h, out_w, c)

    def config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "stride": self.stride}
