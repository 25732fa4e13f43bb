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

    A view of `columns`' matrix, so `reshape(N*oh*ow, kh*kw*C)` is a view too.
    """
    n, _, _, c = x_padded.shape
    cols = columns(x_padded, kernel_h, kernel_w, stride, out_h, out_w)
    return cols.reshape(n, out_h, out_w, kernel_h, kernel_w, c)


def columns(
    x_padded: np.ndarray,
    kernel_h: int,
    kernel_w: int,
    stride: int,
    out_h: int,
    out_w: int,
    ones: bool = False,
    pool: int = 1,
) -> np.ndarray:
    """The conv's matrix: (N, Hp, Wp, C) -> (N*oh*ow, kh*kw*C), one receptive field a row in
    (kh, kw, C) order, and with `ones` a last column of 1s, so that one matrix product adds
    the bias and one gives its gradient (cheaper than a pass over the output for each).

    Rows run over outputs in (N, oh, ow) order; with `pool` p > 1 in (p, p, N, oh/p, ow/p)
    order instead, window offset first, so the product's rows for each offset of a (p, p)
    pooling window are one contiguous block (`spatial_order` undoes it).

    One strided copy, no loop: of all windows in that order for many channels; for few, of
    kernel-major memory (kh*kw*C, rows), whose rows are long, returned transposed (faster for
    1 channel).
    """
    x = np.ascontiguousarray(x_padded)
    n, _, _, c = x.shape
    s_n, s_h, s_w, s_c = x.strides
    size, rows = kernel_h * kernel_w * c, n * out_h * out_w
    row_shape, row_strides = output_axes(n, out_h, out_w, (s_n, s_h * stride, s_w * stride), pool)
    kernel_shape, kernel_strides = (kernel_h, kernel_w, c), (s_h, s_w, s_c)
    if c >= GATHER_MIN_CHANNELS:
        cols = np.empty((rows, size + ones), dtype=x.dtype)
        shape = row_shape + kernel_shape
        window = window_view(x, shape, row_strides + kernel_strides)
        np.copyto(cols[:, :size].reshape(shape), window)  # (rows..., kh, kw, C)
        if ones:
            cols[:, size] = 1
        return cols  # (N*oh*ow, kh*kw*C [+ 1])
    kernel_major = np.empty((size + ones, rows), dtype=x.dtype)
    shape = kernel_shape + row_shape
    window = window_view(x, shape, kernel_strides + row_strides)
    np.copyto(kernel_major[:size].reshape(shape), window)  # (kh, kw, C, rows...)
    if ones:
        kernel_major[size] = 1
    return kernel_major.T  # (N*oh*ow, kh*kw*C [+ 1]), a view


def output_axes(
    n: int, out_h: int, out_w: int, strides: tuple[int, int, int], pool: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shape and strides of the output positions in row order: (N, oh, ow), or window offset
    first for a (pool, pool) pooling window, (p, p, N, oh/p, ow/p). `strides` step N, oh, ow."""
    if pool == 1:
        return (n, out_h, out_w), strides
    if out_h % pool or out_w % pool:
        raise ValueError(f"a {pool}x{pool} pool does not tile an output of {out_h}x{out_w}")
    s_n, s_h, s_w = strides
    return (pool, pool, n, out_h // pool, out_w // pool), (s_h, s_w, s_n, s_h * pool, s_w * pool)


def spatial_order(rows: np.ndarray, n: int, out_h: int, out_w: int, pool: int) -> np.ndarray:
    """Rows in `columns`' pooled (p, p, N, oh/p, ow/p) order, F per row -> (N, oh, ow, F)."""
    f = rows.shape[-1]
    blocks = rows.reshape(pool, pool, n, out_h // pool, out_w // pool, f)
    return blocks.transpose(2, 3, 0, 4, 1, 5).reshape(n, out_h, out_w, f)


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
