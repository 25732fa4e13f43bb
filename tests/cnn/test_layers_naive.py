"""Forward passes against slow, plainly correct Python loops; im2col adjointness; dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.cnn import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    softmax,
    softmax_cross_entropy,
)
from server.cnn.architectures import mnist_cnn
from server.cnn.im2col import col2im_product, im2col, resolve_padding
from server.cnn.layers.pool import GATHER_MAX

# --- naive references ----------------------------------------------------------------------


def naive_padding(padding: str | int, size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's rule for "same": output ceil(size / stride), the odd pixel of padding after."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = (size + stride - 1) // stride
        total = max(0, (out - 1) * stride + kernel - size)
        return total // 2, total - total // 2
    return int(padding), int(padding)


def naive_conv(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: str | int
) -> np.ndarray:
    n, h, w, c = x.shape
    kh, kw, _, f = weight.shape
    top, bottom = naive_padding(padding, h, kh, stride)
    left, right = naive_padding(padding, w, kw, stride)
    xp = np.zeros((n, h + top + bottom, w + left + right, c))
    xp[:, top : top + h, left : left + w] = x
    out_h = (h + top + bottom - kh) // stride + 1
    out_w = (w + left + right - kw) // stride + 1
    out = np.zeros((n, out_h, out_w, f))
    for i in range(n):
        for oy in range(out_h):
            for ox in range(out_w):
                patch = xp[i, oy * stride : oy * stride + kh, ox * stride : ox * stride + kw, :]
                for fi in range(f):
                    total = 0.0
                    for dy in range(kh):
                        for dx in range(kw):
                            for ci in range(c):
                                total += patch[dy, dx, ci] * weight[dy, dx, ci, fi]
                    out[i, oy, ox, fi] = total + (bias[fi] if bias is not None else 0.0)
    return out


def naive_pool(x: np.ndarray, pool: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and the mask of winners; a tie goes to the first cell in row-major order."""
    n, h, w, c = x.shape
    out_h, out_w = (h - pool) // stride + 1, (w - pool) // stride + 1
    out = np.zeros((n, out_h, out_w, c))
    mask = np.zeros(x.shape, dtype=np.uint8)
    for i in range(n):
        for oy in range(out_h):
            for ox in range(out_w):
                for ci in range(c):
                    best, where = -np.inf, (0, 0)
                    for dy in range(pool):
                        for dx in range(pool):
                            value = x[i, oy * stride + dy, ox * stride + dx, ci]
                            if value > best:  # strict: the first maximum wins
                                best, where = value, (dy, dx)
                    out[i, oy, ox, ci] = best
                    mask[i, oy * stride + where[0], ox * stride + where[1], ci] = 1
    return out, mask


def naive_avgpool(x: np.ndarray, pool: int, stride: int) -> np.ndarray:
    n, h, w, c = x.shape
    out_h, out_w = (h - pool) // stride + 1, (w - pool) // stride + 1
    out = np.zeros((n, out_h, out_w, c))
    for i in range(n):
        for oy in range(out_h):
            for ox in range(out_w):
                for ci in range(c):
                    total = 0.0
                    for dy in range(pool):
                        for dx in range(pool):
                            total += x[i, oy * stride + dy, ox * stride + dx, ci]
                    out[i, oy, ox, ci] = total / (pool * pool)
    return out


def naive_batchnorm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray | None, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel by loops; mean None: use the batch's own mean and biased variance.

    Returns (output, mean used, unbiased batch variance) for checking the running statistics.
    """
    channels = x.shape[-1]
    out = np.zeros(x.shape)
    used_mean, unbiased = np.zeros(channels), np.zeros(channels)
    eps = 1e-5
    for ci in range(channels):
        values = [float(v) for v in x[..., ci].ravel()]
        count = len(values)
        batch_mean = sum(values) / count
        batch_var = sum((v - batch_mean) ** 2 for v in values) / count
        unbiased[ci] = batch_var * count / (count - 1)
        m, v = (batch_mean, batch_var) if mean is None else (mean[ci], var[ci])
        used_mean[ci] = m
        for index in np.ndindex(x.shape[:-1]):
            normed = (x[(*index, ci)] - m) / math.sqrt(v + eps)
            out[(*index, ci)] = gamma[ci] * normed + beta[ci]
    return out, used_mean, unbiased


# --- padding geometry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("padding", "size", "kernel", "stride", "expected"),
    [
        ("same", 28, 3, 1, (1, 1, 28)),
        ("same", 8, 3, 2, (0, 1, 4)),  # TF: the odd pixel goes after
        ("same", 7, 3, 2, (1, 1, 4)),
        ("same", 8, 5, 2, (1, 2, 4)),
        ("same", 5, 1, 2, (0, 0, 3)),
        ("same", 6, 4, 1, (1, 2, 6)),
        ("valid", 7, 3, 2, (0, 0, 3)),
        ("valid", 28, 5, 1, (0, 0, 24)),
        (2, 7, 5, 1, (2, 2, 7)),
        (1, 9, 3, 2, (1, 1, 5)),
    ],
)
def test_resolve_padding_table(
    padding: str | int, size: int, kernel: int, stride: int, expected: tuple[int, int, int]
) -> None:
    assert resolve_padding(padding, size, kernel, stride) == expected


@pytest.mark.parametrize("padding", ["full", -1, 1.5, True])
def test_resolve_padding_rejects_bad_values(padding: object) -> None:
    with pytest.raises(ValueError, match="padding"):
        resolve_padding(padding, 8, 3, 1)  # type: ignore[arg-type]


def test_kernel_larger_than_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        resolve_padding("valid", 2, 3, 1)


# --- conv and pool forward vs loops --------------------------------------------------------

CONV_CASES = [
    # (N, H, W, C_in, C_out, kernel, stride, padding, bias)
    (2, 6, 6, 1, 2, 3, 1, "same", True),
    (1, 7, 9, 3, 2, 3, 2, "same", True),
    (2, 8, 8, 2, 3, 3, 2, "same", False),
    (1, 8, 10, 2, 2, 5, 2, "same", True),
    (2, 7, 9, 2, 2, 3, 2, 1, True),
    (1, 7, 9, 2, 2, 5, 1, 2, True),
    (2, 6, 7, 3, 2, 1, 1, "valid", True),
    (1, 9, 9, 2, 2, 3, 3, "valid", True),
    (1, 6, 5, 8, 3, 3, 1, 1, True),  # gather path (C >= 8)
    (1, 7, 8, 10, 2, 3, 2, "same", True),  # gather path, stride 2, asymmetric pad
]


@pytest.mark.parametrize(("n", "h", "w", "c", "f", "k", "stride", "padding", "bias"), CONV_CASES)
def test_conv_forward_matches_loops(
    n: int,
    h: int,
    w: int,
    c: int,
    f: int,
    k: int,
    stride: int,
    padding: str | int,
    bias: bool,
    rng: np.random.Generator,
) -> None:
    layer = Conv2D("conv", c, f, k, stride=stride, padding=padding, bias=bias, rng=rng)
    if bias:
        layer.params["bias"] = rng.standard_normal(f).astype(np.float32)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    out, _ = layer.forward(x)
    expected = naive_conv(
        x.astype(np.float64),
        layer.params["weight"].astype(np.float64),
        layer.params["bias"].astype(np.float64) if bias else None,
        stride,
        padding,
    )
    assert out.shape == expected.shape
    assert out.shape[1:] == layer.output_shape((h, w, c))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


POOL_CASES = [
    # (N, H, W, C, pool, stride)
    (2, 6, 6, 2, 2, 2),
    (1, 7, 9, 3, 2, 2),
    (2, 7, 9, 2, 3, 2),
    (1, 5, 6, 2, 2, 1),
    (1, 9, 7, 2, 3, 3),
    (1, 8, 8, 1, 2, 3),  # stride > pool: some cells skipped
]


@pytest.mark.parametrize(("n", "h", "w", "c", "pool", "stride"), POOL_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_pool_forward_and_mask_match_loops(
    n: int, h: int, w: int, c: int, pool: int, stride: int, ties: bool, rng: np.random.Generator
) -> None:
    if ties:
        x = rng.integers(0, 3, size=(n, h, w, c)).astype(np.float32)
    else:
        x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    layer = MaxPool2D("pool", pool, stride)
    out, cache = layer.forward(x)
    expected_out, expected_mask = naive_pool(x.astype(np.float64), pool, stride)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(layer.mask(cache), expected_mask)
    assert out.shape[1:] == layer.output_shape((h, w, c))


@pytest.mark.parametrize(("h", "w", "pool"), [(28, 28, 2), (29, 27, 3)])
def test_pool_of_a_big_batch_matches_each_image_pooled_alone(
    h: int, w: int, pool: int, rng: np.random.Generator
) -> None:
    """A big batch takes the in-place path, one image the gathered one (GATHER_MAX)."""
    x = np.maximum(rng.integers(-2, 3, size=(4, h, w, 32)), 0).astype(np.float32)  # many ties
    assert x.size > GATHER_MAX >= x[:1].size
    layer = MaxPool2D("pool", pool)
    out, cache = layer.forward(x)
    mask = layer.mask(cache)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    grad_in, _ = layer.backward(grad, cache)
    for i in range(len(x)):
        alone, alone_cache = layer.forward(x[i : i + 1])
        np.testing.assert_array_equal(out[i : i + 1], alone)
        np.testing.assert_array_equal(mask[i : i + 1], layer.mask(alone_cache))
        np.testing.assert_array_equal(
            grad_in[i : i + 1], layer.backward(grad[i : i + 1], alone_cache)[0]
        )


@pytest.mark.parametrize(("n", "h", "w", "c", "pool", "stride"), POOL_CASES)
def test_avgpool_forward_matches_loops(
    n: int, h: int, w: int, c: int, pool: int, stride: int, rng: np.random.Generator
) -> None:
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    layer = AvgPool2D("pool", pool, stride)
    out, cache = layer.forward(x)
    np.testing.assert_allclose(out, naive_avgpool(x.astype(np.float64), pool, stride), atol=1e-6)
    assert out.shape[1:] == layer.output_shape((h, w, c))
    assert layer.mask(cache) is None  # nothing won: the views draw no mask for it


def test_relu_matches_a_loop_bit_for_bit(rng: np.random.Generator) -> None:
    """Including the cases a vectorised max may get wrong: -0.0, NaN, infinities, a big map."""
    specials = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, -1e-45, 1e-45], dtype=np.float32)
    x = rng.standard_normal((2, 28, 28, 32)).astype(np.float32)
    x.reshape(-1)[: specials.size] = specials
    out, cache = ReLU("r").forward(x)
    expected = np.array([v if v > 0 or math.isnan(v) else 0.0 for v in x.reshape(-1).tolist()])
    assert out.dtype == np.float32
    assert cache is out
    np.testing.assert_array_equal(out.reshape(-1), expected.astype(np.float32))
    assert not np.signbit(out).any()  # -0.0 comes out as +0.0


def test_tanh_and_sigmoid_match_math(rng: np.random.Generator) -> None:
    x = (rng.standard_normal((3, 5)) * 4).astype(np.float32)
    tanh, _ = Tanh("t").forward(x)
    sigmoid, _ = Sigmoid("s").forward(x)
    for index in np.ndindex(x.shape):
        value = float(x[index])
        assert tanh[index] == pytest.approx(math.tanh(value), abs=1e-6)
        assert sigmoid[index] == pytest.approx(1 / (1 + math.exp(-value)), abs=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 4, 3), (7, 5)], ids=["maps", "vectors"])
def test_batchnorm_matches_loops_in_both_modes(
    shape: tuple[int, ...], rng: np.random.Generator
) -> None:
    c = shape[-1]
    layer = BatchNorm("bn", c, momentum=0.3)
    layer.params["gamma"][...] = rng.uniform(0.5, 1.5, c)
    layer.params["beta"][...] = rng.standard_normal(c)
    start_mean = rng.standard_normal(c).astype(np.float32)
    start_var = rng.uniform(0.5, 2.0, c).astype(np.float32)
    layer.buffers["running_mean"][...] = start_mean
    layer.buffers["running_var"][...] = start_var
    gamma, beta = layer.params["gamma"], layer.params["beta"]
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)

    out, _ = layer.forward(x)  # eval: running statistics, nothing written
    expected, _, _ = naive_batchnorm(x, gamma, beta, start_mean, start_var)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.buffers["running_mean"], start_mean)
    np.testing.assert_array_equal(layer.buffers["running_var"], start_var)

    out, _ = layer.forward(x, training=True)
    expected, batch_mean, unbiased = naive_batchnorm(x, gamma, beta, None, start_var)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        layer.buffers["running_mean"], 0.7 * start_mean + 0.3 * batch_mean, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        layer.buffers["running_var"], 0.7 * start_var + 0.3 * unbiased, rtol=1e-5, atol=1e-6
    )


def test_batchnorm_refuses_to_train_on_one_value_per_channel() -> None:
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm("bn", 4).forward(np.ones((1, 4), dtype=np.float32), training=True)


# --- im2col / col2im -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hp", "wp", "c", "k", "stride"),
    [(7, 9, 3, 3, 1), (8, 8, 2, 3, 2), (9, 7, 1, 5, 2), (7, 7, 8, 3, 2), (6, 9, 12, 2, 3)],
)
def test_im2col_matches_loops_and_col2im_product_is_its_adjoint(
    hp: int, wp: int, c: int, k: int, stride: int, rng: np.random.Generator
) -> None:
    out_h, out_w = (hp - k) // stride + 1, (wp - k) // stride + 1
    x = rng.standard_normal((2, hp, wp, c))
    cols = im2col(x, k, k, stride, out_h, out_w)
    assert cols.shape == (2, out_h, out_w, k, k, c)
    assert np.shares_memory(cols.reshape(-1, k * k * c), cols)  # the conv's matrix is no copy
    for oy in range(out_h):
        for ox in range(out_w):
            window = x[:, oy * stride : oy * stride + k, ox * stride : ox * stride + k, :]
            np.testing.assert_array_equal(cols[:, oy, ox], window)
    # <im2col(x) @ W, g> == <x, col2im_product(g, W)>: the exact transpose of gather-then-multiply
    weight = rng.standard_normal((k, k, c, 4))
    g = rng.standard_normal((2, out_h, out_w, 4))
    back = col2im_product(g, weight, x.shape, stride)
    assert back.shape == x.shape
    forward = cols.reshape(-1, k * k * c) @ weight.reshape(k * k * c, 4)
    assert np.vdot(forward, g) == pytest.approx(np.vdot(x, back), rel=1e-12)


# --- dtypes --------------------------------------------------------------------------------


def float32_layers(rng: np.random.Generator) -> list[tuple[object, tuple[int, ...]]]:
    return [
        (Conv2D("c1", 2, 3, 3, stride=2, padding="same", rng=rng), (2, 7, 9, 2)),
        (Conv2D("c2", 9, 3, 3, padding=1, rng=rng), (2, 5, 5, 9)),
        (ReLU("r"), (2, 4, 4, 3)),
        (MaxPool2D("p", 3, 2), (2, 7, 9, 3)),
        (Flatten("f"), (2, 4, 4, 3)),
        (Dense("d", 12, 5, rng=rng), (2, 12)),
        (Dropout("drop", 0.5), (2, 12)),
        (AvgPool2D("a", 2), (2, 7, 9, 3)),
        (AvgPool2D("a", 3, 2), (2, 7, 9, 3)),
        (Tanh("t"), (2, 4, 4, 3)),
        (Sigmoid("s"), (2, 12)),
        (BatchNorm("bn", 3), (2, 4, 4, 3)),
        (BatchNorm("bn", 12), (2, 12)),
    ]


@pytest.mark.parametrize("index", range(13))
@pytest.mark.parametrize("training", [False, True])
def test_float32_in_float32_out(index: int, training: bool, rng: np.random.Generator) -> None:
    layer, shape = float32_layers(rng)[index]
    x = rng.standard_normal(shape).astype(np.float32)
    out, cache = layer.forward(x, training=training, rng=np.random.default_rng(0))
    assert out.dtype == np.float32, f"{layer!r} forward gave {out.dtype}"
    grad_in, grads = layer.backward(np.ones_like(out), cache)
    assert grad_in.dtype == np.float32, f"{layer!r} input gradient is {grad_in.dtype}"
    assert grad_in.shape == x.shape
    for key, grad in grads.items():
        assert grad.dtype == np.float32, f"{layer!r} gradient {key} is {grad.dtype}"
        assert grad.shape == layer.params[key].shape


def test_model_and_loss_stay_float32(rng: np.random.Generator) -> None:
    model = mnist_cnn(seed=1)
    x = rng.random((3, 28, 28, 1), dtype=np.float32)
    logits = model.forward(x)
    assert logits.dtype == np.float32
    trace = model.trace(x)
    assert all(layer.output.dtype == np.float32 for layer in trace.layers)
    loss, grad = softmax_cross_entropy(logits, np.array([1, 2, 3]))
    assert isinstance(loss, float)
    assert grad.dtype == np.float32
    grad_x, grads = model.backward(grad, trace.caches)
    assert grad_x.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert softmax(logits).dtype == np.float32


def test_softmax_is_stable_for_huge_logits() -> None:
    logits = np.array([[1000.0, 1000.0, -1000.0], [-1e4, 0.0, 1e4]])
    p = softmax(logits)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], atol=1e-12)
    loss, grad = softmax_cross_entropy(logits, np.array([2, 0]))
    assert np.isfinite(loss)
    assert np.isfinite(grad).all()
    assert loss == pytest.approx((2000.0 + np.log(2.0) + 2e4) / 2)  # logsumexp row 1: 1000 + ln 2


def test_sequential_output_shapes_match_real_forward(rng: np.random.Generator) -> None:
    model = Sequential(
        [
            Conv2D("c1", 1, 3, 5, stride=2, padding="same", rng=rng),
            ReLU("r1"),
            MaxPool2D("p1", 3, 2),
            Conv2D("c2", 3, 4, 3, stride=1, padding="valid", rng=rng),
            Flatten("f"),
            Dense("d", 3 * 3 * 4, 2, rng=rng),
        ],
        input_shape=(23, 21, 1),
    )
    trace = model.trace(rng.standard_normal((2, 23, 21, 1)).astype(np.float32))
    for layer, shape in zip(trace.layers, model.output_shapes, strict=True):
        assert layer.output.shape[1:] == shape, layer.name
