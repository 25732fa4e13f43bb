"""2-D convolution as im2col plus one matrix product (NHWC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn.im2col import (
    Padding,
    col2im_product,
    columns,
    pad_spatial,
    resolve_padding,
    spatial_order,
)
from server.cnn.layers.base import Array, Layer, Params


@dataclass(frozen=True)
class ConvCache:
    """What backward needs: the input's columns and where the unpadded input sat."""

    cols: Array  # (N*oh*ow, kh*kw*C [+ 1, the bias as a row]), rows in `columns`' order
    padded_shape: tuple[int, ...]  # (N, Hp, Wp, C)
    crop: tuple[int, int, int, int]  # top, left, H, W of the input inside the padded one
    out_shape: tuple[int, int, int]  # N, oh, ow
    pool: int = 1  # > 1: rows (and so the output and its gradient) pool-window-offset first


class Conv2D(Layer):
    """Cross-correlation with a (kh, kw, C_in, C_out) kernel, He-initialised for ReLU."""

    kind = "conv2d"

    def __init__(
        self,
        name: str,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: Padding = "same",
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(name)
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"{name}: kernel_size and stride must be >= 1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.bias = bias
        rng = rng or np.random.default_rng(0)
        fan_in = kernel_size * kernel_size * in_channels
        shape = (kernel_size, kernel_size, in_channels, out_channels)
        self.params["weight"] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(
            np.float32
        )
        if bias:
            self.params["bias"] = np.zeros(out_channels, dtype=np.float32)

    def kernels(self) -> Array:
        """The weight as PyTorch and the API lay kernels out: (kh, kw, C, F) -> (F, C, kh, kw),
        a view."""
        return self.params["weight"].transpose(3, 2, 0, 1)

    def _geometry(self, h: int, w: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        k, s = self.kernel_size, self.stride
        return resolve_padding(self.padding, h, k, s), resolve_padding(self.padding, w, k, s)

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        rows, cache = self._rows(x, pool=1)  # (N*oh*ow, F)
        return rows.reshape(*cache.out_shape, self.out_channels), cache

    def forward_pooled(self, x: Array, pool: int) -> tuple[Array, ConvCache]:
        """The output as (p*p, N*oh/p*ow/p, F): for each offset in a (p, p) pooling window, the
        outputs it holds, one contiguous block, so that the pool after this layer reduces
        whole blocks. Its backward takes the gradient in that order too."""
        rows, cache = self._rows(x, pool)  # (p*p * N*oh/p*ow/p, F)
        return rows.reshape(pool * pool, -1, self.out_channels), cache

    def _rows(self, x: Array, pool: int) -> tuple[Array, ConvCache]:
        _, h, w, c = x.shape
        if c != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} channels, got {c}")
        (top, bottom, out_h), (left, right, out_w) = self._geometry(h, w)
        x_padded = pad_spatial(x, top, bottom, left, right)
        k = self.kernel_size
        shape = (len(x), out_h, out_w)
        # The bias as a row of the matrix, beside a column of 1s, costs a copy of the weight;
        # added to the product it costs a pass over the output: the smaller one (the output,
        # for a deep conv of one image).
        as_row = self.bias and len(x) * out_h * out_w >= k * k * c
        # (N*oh*ow, kh*kw*C [+ 1]): with the bias as a row, a column of 1s that it multiplies
        cols = columns(x_padded, k, k, self.stride, out_h, out_w, ones=as_row, pool=pool)
        if as_row:
            out = cols @ self._matrix()  # (N*oh*ow, F)
        else:
            out = cols @ self.params["weight"].reshape(-1, self.out_channels)
            if self.bias:
                out += self.params["bias"]
        return out, ConvCache(cols, x_padded.shape, (top, left, h, w), shape, pool)

    def _matrix(self) -> Array:
        """The weight as (kh*kw*C, F), with the bias as one more row if there is one."""
        weight = self.params["weight"].reshape(-1, self.out_channels)
        if self.bias:
            weight = np.concatenate([weight, self.params["bias"][None]])
        return weight

    def parameter_gradients(self, grad_out: Array, cache: Any) -> Params:
        cols = cache.cols  # (N*oh*ow, kh*kw*C [+ 1 when the bias was a row])
        grad_2d = grad_out.reshape(-1, self.out_channels)  # (N*oh*ow, F), the rows' order
        both = cols.T @ grad_2d  # (kh*kw*C [+ 1], F): a bias row sums grad over rows
        size = self.params["weight"].size // self.out_channels
        grads: Params = {"weight": both[:size].reshape(self.params["weight"].shape)}
        if self.bias:
            grads["bias"] = both[size] if len(both) > size else grad_2d.sum(axis=0)
        return grads

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        c: ConvCache = cache
        top, left, h, w = c.crop
        grads = self.parameter_gradients(grad_out, c)
        if c.pool > 1:  # back from pool-window order: (N, oh, ow, F)
            grad_out = spatial_order(grad_out, *c.out_shape, c.pool)
        grad_padded = col2im_product(grad_out, self.params["weight"], c.padded_shape, self.stride)
        return grad_padded[:, top : top + h, left : left + w, :], grads

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, _ = input_shape
        (_, _, out_h), (_, _, out_w) = self._geometry(h, w)
        return (out_h, out_w, self.out_channels)

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "bias": self.bias,
        }
