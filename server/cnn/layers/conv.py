"""2-D convolution as im2col plus one matrix product (NHWC)."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.cnn.im2col import Padding, col2im_product, im2col, pad_spatial, resolve_padding
from server.cnn.layers.base import Array, Layer, Params


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
        n, h, w, c = x.shape
        if c != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} channels, got {c}")
        (top, bottom, out_h), (left, right, out_w) = self._geometry(h, w)
        x_padded = pad_spatial(x, top, bottom, left, right)
        k = self.kernel_size
        cols = im2col(x_padded, k, k, self.stride, out_h, out_w)
        cols = cols.reshape(n * out_h * out_w, k * k * c)  # (N*oh*ow, kh*kw*C)
        weight = self.params["weight"].reshape(k * k * c, self.out_channels)
        out = cols @ weight  # (N*oh*ow, F)
        if self.bias:
            out += self.params["bias"]
        out = out.reshape(n, out_h, out_w, self.out_channels)
        return out, (cols, x_padded.shape, (top, left, h, w))

    def parameter_gradients(self, grad_out: Array, cache: Any) -> Params:
        cols = cache[0]  # (N*oh*ow, kh*kw*C)
        grad_2d = grad_out.reshape(-1, grad_out.shape[-1])  # (N*oh*ow, F)
        grads: Params = {"weight": (cols.T @ grad_2d).reshape(self.params["weight"].shape)}
        if self.bias:
            grads["bias"] = grad_2d.sum(axis=0)
        return grads

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        _, padded_shape, (top, left, h, w) = cache
        grads = self.parameter_gradients(grad_out, cache)
        grad_padded = col2im_product(grad_out, self.params["weight"], padded_shape, self.stride)
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
