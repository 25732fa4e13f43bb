"""Max-pooling that remembers which input cell won each window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Params
from server.cnn.layers.windows import Pool2D

# Inputs up to this many values (one or two images) gather their tiles into offset-major order:
# faster for the max alone, and for the winners. A training batch's copy costs more than it
# saves (docs/speed.md, "Engine choices"), and a big batch's max alone is cheaper in place.
GATHER_MAX = 1 << 16


class TiledWinners:
    """Windows that tile the input; which cell won is worked out only if someone asks.

    Plain inference never asks, a trace asks for the mask, training asks in backward. The
    object belongs to one forward call, so keeping the answer on it is thread-safe. (Not
    functools.cached_property: before Python 3.12 it takes one lock shared by every instance,
    which serialised pooling across request threads.)
    """

    def __init__(self, offsets: Array, best: Array, input_shape: tuple[int, ...]) -> None:
        self.offsets = offsets  # (p, p, N, oh, ow, C): the tiles by window offset, view or copy
        self.best = best  # (N, oh, ow, C)
        self.input_shape = input_shape
        self._one_hot: Array | None = None

    @property
    def one_hot(self) -> Array:
        """(N, oh, p, ow, p, C) bool, exactly one True per window: the first maximum."""
        if self._one_hot is None:
            self._one_hot = self._first_winners()
        return self._one_hot

    def _first_winners(self) -> Array:
        p = self.offsets.shape[0]
        # (p, p, N, oh, ow, C): each window offset's cells contiguous, where the walk below runs
        # faster than on strided views of the tiles; one copy back into the tiles' layout.
        cells = np.empty(self.offsets.shape, dtype=bool)
        np.equal(self.offsets, self.best, out=cells)
        # Ties (common: ReLU zeros) go to the first offset in row-major order; for bools,
        # `cell > claimed` is `cell and not claimed`.
        flat = cells.reshape(p * p, -1)  # (p*p, N*oh*ow*C)
        claimed = flat[0].copy()
        for index in range(1, p * p):
            np.greater(flat[index], claimed, out=flat[index])
            if index < p * p - 1:
                np.logical_or(claimed, flat[index], out=claimed)
        n, out_h, out_w, c = self.best.shape
        winners = np.empty((n, out_h, p, out_w, p, c), dtype=bool)
        winners[...] = cells.transpose(2, 3, 0, 4, 1, 5)
        return winners


class RowWinners:
    """Max-pooling over a conv's output in pool-window order (`Conv2D.forward_pooled`): each
    window offset's values are one contiguous block, so the max and the winners work on whole
    blocks. With `gate`, a ReLU that came before the pool in the network ran after it (they
    commute): the gradient is gated by the ReLU's output before it goes to the winners, which
    is the ReLU's backward, as the ReLU's own cache says (FOLDED)."""

    def __init__(self, values: Array, best: Array, gate: Array | None) -> None:
        self.values = values  # (p*p, Q, C): Q = N*oh*ow pooled cells, offset by offset
        self.best = best  # (Q, C)
        self.gate = gate  # (Q, C), the ReLU's output, or None
        self._one_hot: Array | None = None

    @property
    def one_hot(self) -> Array:
        """(p*p, Q, C) bool, exactly one True per window: the first maximum."""
        if self._one_hot is None:
            cells = np.equal(self.values, self.best)  # (p*p, Q, C)
            claimed = cells[0].copy()
            for index in range(1, len(cells)):  # ties go to the first offset, as for tiles
                np.greater(cells[index], claimed, out=cells[index])
                if index < len(cells) - 1:
                    np.logical_or(claimed, cells[index], out=claimed)
            self._one_hot = cells
        return self._one_hot


@dataclass(frozen=True)
class StridedWinners:
    """Overlapping windows: the offset (row-major index in the window) of each winner."""

    offset: Array  # (N, oh, ow, C) uint8
    input_shape: tuple[int, ...]


class MaxPool2D(Pool2D):
    """Max over (pool, pool) windows; ties go to the first cell in row-major order.

    Windows that tile the input (stride == pool size, the usual case) are pooled through a
    reshape (and, for small inputs, one copy into offset-major order);
    overlapping windows loop over the pool_size**2 window offsets.
    """

    kind = "maxpool2d"

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out_h, out_w, _ = self.output_shape(x.shape[1:])
        if self.tiled:
            return self._forward_tiled(x, out_h, out_w, gather=x.size <= GATHER_MAX)
        return self._forward_strided(x, out_h, out_w)

    def _untile(self, tiled: Array, input_shape: tuple[int, ...]) -> Array:
        """(N, oh, p, ow, p, C) -> (N, H, W, C): a view, or zeros where no window reached."""
        _, out_h, p, out_w, _, _ = tiled.shape
        if (out_h * p, out_w * p) == tuple(input_shape[1:3]):
            return tiled.reshape(input_shape)
        full = np.zeros(input_shape, dtype=tiled.dtype)
        self._tiles(full, out_h, out_w)[...] = tiled
        return full

    def _forward_tiled(
        self, x: Array, out_h: int, out_w: int, gather: bool
    ) -> tuple[Array, TiledWinners]:
        """With `gather`, copy the tiles into offset-major order first: the maxima and the
        winners then run on contiguous memory (for one image even the maxima alone are faster)."""
        p = self.pool_size
        offsets = self._tiles(x, out_h, out_w).transpose(2, 4, 0, 1, 3, 5)  # (p, p, N, oh, ow, C)
        if gather:
            offsets = offsets.copy()
        rows = offsets[0]  # (p, N, oh, ow, C): max over the window's rows ...
        for i in range(1, p):
            rows = np.maximum(rows, offsets[i])
        best = rows[0]  # ... then over its columns: (N, oh, ow, C)
        for j in range(1, p):
            best = np.maximum(best, rows[j])
        if p == 1:
            best = best.copy()
        return best, TiledWinners(offsets, best, x.shape)

    def _forward_strided(self, x: Array, out_h: int, out_w: int) -> tuple[Array, StridedWinners]:
        views = self._windows(x, out_h, out_w)
        best = views[0].copy() if len(views) == 1 else np.maximum(views[0], views[1])
        for view in views[2:]:
            np.maximum(best, view, out=best)
        # The winner is the first offset equal to the max: fill from the last offset back.
        winner = np.full(best.shape, len(views) - 1, dtype=np.uint8)
        for index in range(len(views) - 2, -1, -1):
            np.copyto(winner, np.uint8(index), where=views[index] == best)
        return best, StridedWinners(winner, x.shape)

    def forward_rows(
        self, values: Array, out_shape: tuple[int, ...], relu: bool
    ) -> tuple[Array, Any]:
        """Pool a conv's output given in pool-window order (p*p, Q, C), Q = N*oh*ow, into
        (N, oh, ow, C); with `relu`, apply the ReLU that came before the pool after it."""
        best = values.max(axis=0)  # (Q, C)
        gate = np.maximum(best, best.dtype.type(0)) if relu else None
        out = best if gate is None else gate
        return out.reshape(out_shape), RowWinners(values, best, gate)

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        if isinstance(cache, RowWinners):
            grad = grad_out.reshape(cache.best.shape)  # (Q, C)
            if cache.gate is not None:
                grad = grad * (cache.gate > 0)  # the folded ReLU's backward
            return cache.one_hot * grad, {}  # (p*p, Q, C), in the conv's row order
        if isinstance(cache, TiledWinners):
            # (N, oh, p, ow, p, C): each window's gradient goes to its winner alone
            routed = cache.one_hot * grad_out[:, :, None, :, None, :]
            return self._untile(routed, cache.input_shape), {}
        _, out_h, out_w, _ = grad_out.shape
        grad_in = np.zeros(cache.input_shape, dtype=grad_out.dtype)
        for index, region in enumerate(self._windows(grad_in, out_h, out_w)):
            region += (cache.offset == index) * grad_out
        return grad_in, {}

    def mask(self, cache: Any) -> Array:
        """(N, H, W, C) uint8, 1 where a cell was the maximum of some window."""
        if isinstance(cache, RowWinners):
            raise ValueError(f"{self.name}: a fused pass keeps no mask; trace the model instead")
        if isinstance(cache, TiledWinners):
            return self._untile(cache.one_hot.view(np.uint8), cache.input_shape)  # bool as 0/1
        mask = np.zeros(cache.input_shape, dtype=np.uint8)
        _, out_h, out_w, _ = cache.offset.shape
        for index, region in enumerate(self._windows(mask, out_h, out_w)):
            region |= cache.offset == index
        return mask
