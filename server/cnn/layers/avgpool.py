"""Average pooling: every cell of a window counts the same, so nothing is remembered but a shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Params
from server.cnn.layers.windows import Pool2D


@dataclass(frozen=True)
class RowShares:
    """The cache of `forward_rows`: how many window offsets share each gradient."""

    offsets: int


class AvgPool2D(Pool2D):
    """Mean over (pool, pool) windows, no padding (PyTorch's avg_pool2d with padding 0).

    Windows that tile the input (stride == pool size) are summed through a reshape; overlapping
    windows add one strided view per window offset. Rows and columns no window covers get no
    gradient, as in max-pooling.
    """

    kind = "avgpool2d"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out_h, out_w, _ = self.output_shape(x.shape[1:])
        scale = x.dtype.type(1.0 / self.pool_size**2)
        if self.tiled:
            tiles = self._tiles(x, out_h, out_w)
            total = tiles.sum(axis=(2, 4))  # (N, oh, ow, C)
        else:
            views = self._windows(x, out_h, out_w)
            total = views[0].copy()
            for view in views[1:]:
                total += view
        total *= scale
        return total, x.shape

    def forward_rows(self, values: Array, out_shape: tuple[int, ...]) -> tuple[Array, Any]:
        """Pool a conv's output given in pool-window order (p*p, Q, C), Q = N*oh*ow, into
        (N, oh, ow, C); backward then answers in that order too."""
        total = values.sum(axis=0)  # (Q, C)
        total *= values.dtype.type(1.0 / self.pool_size**2)
        return total.reshape(out_shape), RowShares(len(values))

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        if isinstance(cache, RowShares):
            share = grad_out * grad_out.dtype.type(1.0 / self.pool_size**2)
            grad_in = np.empty((cache.offsets, *share.shape), dtype=share.dtype)
            grad_in[...] = share  # (p*p, N, oh, ow, C): every offset gets the same share
            return grad_in.reshape(cache.offsets, -1, share.shape[-1]), {}  # (p*p, Q, C)
        input_shape = cache
        _, out_h, out_w, _ = grad_out.shape
        share = grad_out * grad_out.dtype.type(1.0 / self.pool_size**2)  # each cell's part
        grad_in = np.zeros(input_shape, dtype=grad_out.dtype)
        if self.tiled:
            # (N, oh, p, ow, p, C) view of grad_in: every cell of a window gets the same share
            self._tiles(grad_in, out_h, out_w)[...] = share[:, :, None, :, None, :]
        else:
            for region in self._windows(grad_in, out_h, out_w):
                region += share
        return grad_in, {}
