"""im2col/col2im on NHWC tensors: turn a convolution into one matrix product."""

from __future__ import annotations

import numpy as np

# Below this many channels a kernel-major copy beats gathering windows in order (measured).
GATHER_MIN_CHANNELS = 8

Padding = str | int


def resolve_padding(padding: Padding, size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """Return (pad_before, pad_after, out_size) along one spatial axis.

    "same" follows TensorFlow: out = ceil(size / stride), any odd extra pad goes after.
    """
    if padding == "valid":
        before = after = 0
    elif padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        before, after = total // 2, total - total // 2
    elif isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        before = after = padding
    else:
        raise ValueError(f"padding must be 'same', 'valid' or an int >= 0, got {padding!r}")
    out_size = (size + before + after - kernel) // stride + 1
    if out_size < 1:
        raise ValueError(
            f"kernel {kernel} with stride {stride} and padding {padding!r} "
            f"does not fit an input of size {size}"
        )
    return before, after, out_size


def window_slice(offset: int, stride: int, out_size: int) -> slice:
    """The input positions that kernel offset `offset` touches across all outputs."""
    return slice(offset, offset + stride * (out_size - 1) + 1, stride)


def pad_spatial(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Zero-pad H and W of (N, H, W, C); cheaper than np.pad on small inputs."""
    if not (top or bottom or left or right):
        return x
    n, h, w, c = x.shape
    padded = np.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    padded[:, top : top + h, left : left + w, :] = x
    return padded


def im2col(
    x_padded: np.ndarray, kernel_h: int, kernel_w: int, stride: int, out_h: int, out_w: int
) -> np.ndarray:
    """Gather every receptive field: (N, Hp, Wp, C) -> (N, out_h, out_w, kh, kw, C).

    One strided copy, no loop: of all windows in that order for many channels; for few, of
    kernel-major memory (kh, kw, C, N, oh, ow), whose rows are long, returned as a transposed
    view (faster for 1 channel). Either way `reshape(N*oh*ow, kh*kw*C)` is a view.
    """
    x = np.ascontiguousarray(x_padded)
    n, _, _, c = x.shape
    s_n, s_h, s_w, s_c = x.strides
    if c >= GATHER_MIN_CHANNELS:
        shape = (n, out_h, out_w, kernel_h, kernel_w, c)
        strides = (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c)
        return window_view(x, shape, strides).copy()  # (N, oh, ow, kh, kw, C)
    shape = (kernel_h, kernel_w, c, n, out_h, out_w)
    strides = (s_h, s_w, s_c, s_n, s_h * stride, s_w * stride)
    cols = window_view(x, shape, strides).copy()  # (kh, kw, C, N, oh, ow)
    return cols.transpose(3, 4, 5, 0, 1, 2)  # (N, oh, ow, kh, kw, C), a view


def window_view(x: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """A read-only strided view of contiguous `x`; np.ndarray directly, since as_strided and
    sliding_window_view cost more in Python than the copy they feed on a 28x28 input."""
    view = np.ndarray(shape, x.dtype, x, 0, strides)
    view.flags.writeable = False
    return view


def col2im_product(
    grad: np.ndarray, weight: np.ndarray, padded_shape: tuple[int, ...], stride: int
) -> np.ndarray:
    """col2im(grad @ W.T) without materialising the columns: the input gradient of a conv.

    grad (N, oh, ow, F), weight (kh, kw, C, F) -> (N, Hp, Wp, C). One small matrix product and
    one strided add per kernel offset: cheaper than building (N*oh*ow, kh*kw*C).
    """
    n, out_h, out_w, f = grad.shape
    kernel_h, kernel_w, c, _ = weight.shape
    grad_2d = grad.reshape(-1, f)  # (N*oh*ow, F)
    x_padded = np.zeros(padded_shape, dtype=grad.dtype)
    for i in range(kernel_h):
        rows = window_slice(i, stride, out_h)
        for j in range(kernel_w):
            contribution = (grad_2d @ weight[i, j].T).reshape(n, out_h, out_w, c)
            x_padded[:, rows, window_slice(j, stride, out_w), :] += contribution
    return x_padded
