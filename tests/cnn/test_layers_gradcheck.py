"""Every backward pass against central differences, in float64.

The loss is always a scalar L = sum(out * R) with a fixed random R, so dL/dout = R and any
mistake in a layer's backward (a missing stride, a transposed weight, a wrong padding crop)
shows up as a mismatch with the numerical derivative.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from server.cnn import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    softmax_cross_entropy,
)

EPS = 1e-6
TOL = 1e-6


def numerical_grad(f: Callable[[], float], arr: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f / d arr by central differences, perturbing `arr` in place (restored afterwards)."""
    grad = np.zeros_like(arr)
    for index in np.ndindex(arr.shape):
        old = arr[index]
        arr[index] = old + eps
        plus = f()
        arr[index] = old - eps
        minus = f()
        arr[index] = old
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, what: str) -> None:
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    scale = max(np.abs(analytic).max(), np.abs(numeric).max())
    assert scale > 1e-8, f"{what}: gradient is identically zero, the check would prove nothing"
    error = np.abs(analytic - numeric).max() / scale
    assert error < TOL, f"{what}: relative error {error:.3e}"


def to_float64(layer: Layer) -> None:
    for key in layer.params:
        layer.params[key] = layer.params[key].astype(np.float64)


def check_layer(
    layer: Layer,
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    training: bool = False,
    forward_rng_seed: int | None = None,
) -> None:
    """Input gradient and every parameter gradient of `layer` at `x` against numerics."""
    to_float64(layer)

    def run() -> tuple[np.ndarray, object]:
        gen = None if forward_rng_seed is None else np.random.default_rng(forward_rng_seed)
        out, cache = layer.forward(x, training=training, rng=gen)
        return out, cache

    out, cache = run()
    assert out.dtype == np.float64
    R = rng.standard_normal(out.shape)

    def loss() -> float:
        return float(np.sum(run()[0] * R))

    grad_x, grads = layer.backward(R, cache)
    assert set(grads) == set(layer.params), "backward must return a gradient for every param"
    assert_grad_close(grad_x, numerical_grad(loss, x), f"{layer!r} d/dx")
    for key, param in layer.params.items():
        assert_grad_close(grads[key], numerical_grad(loss, param), f"{layer!r} d/d{key}")


# --- Conv2D ------------------------------------------------------------------------------

CONV_CASES = [
    # (N, H, W, C_in, C_out, kernel, stride, padding, bias)
    (2, 7, 9, 3, 2, 3, 1, "same", True),
    (2, 7, 9, 2, 3, 3, 2, 1, True),  # stride 2, int padding 1
    (1, 8, 8, 2, 2, 3, 2, "same", True),  # "same" + stride 2: pads 0 before, 1 after
    (2, 8, 10, 2, 2, 5, 2, "same", True),  # pads (1, 2) and (1, 2): asymmetric
    (2, 7, 9, 3, 2, 5, 1, 2, True),  # int padding 2, kernel 5
    (2, 6, 7, 2, 3, 1, 1, "valid", True),  # kernel 1
    (2, 9, 9, 1, 2, 3, 2, "valid", False),  # no bias, stride leaves the last row unused
    (1, 7, 9, 8, 2, 3, 1, 1, True),  # >= 8 channels: the strided-gather im2col path
    (1, 7, 6, 9, 2, 3, 2, "same", True),  # gather path with stride 2
    (1, 4, 4, 8, 4, 3, 1, "valid", True),  # 4 outputs < 72 weights: the bias added, not a row
]


@pytest.mark.parametrize(("n", "h", "w", "c", "f", "k", "stride", "padding", "bias"), CONV_CASES)
def test_conv2d_gradients(
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
    if bias:  # a zero bias would hide a bias-gradient bug in the forward value
        layer.params["bias"] = rng.standard_normal(f)
    check_layer(layer, rng.standard_normal((n, h, w, c)), rng)


# --- MaxPool2D -----------------------------------------------------------------------------

POOL_CASES = [
    # (N, H, W, C, pool, stride)
    (2, 6, 6, 2, 2, 2),
    (2, 7, 9, 2, 3, 2),  # overlapping windows, odd sizes
    (2, 5, 6, 2, 2, 1),  # stride 1: every interior cell is in 4 windows
    (1, 7, 7, 3, 2, 2),  # odd size: last row and column belong to no window
    (2, 9, 7, 1, 3, 3),
]


def distinct_values(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A permutation of 0..size-1, scaled: every gap is >> EPS, so no max ever flips."""
    size = int(np.prod(shape))
    return rng.permutation(size).reshape(shape).astype(np.float64) / size - 0.5


@pytest.mark.parametrize(("n", "h", "w", "c", "pool", "stride"), POOL_CASES)
def test_maxpool_gradients(
    n: int, h: int, w: int, c: int, pool: int, stride: int, rng: np.random.Generator
) -> None:
    check_layer(MaxPool2D("pool", pool, stride), distinct_values((n, h, w, c), rng), rng)


def test_maxpool_tie_gives_gradient_to_first_cell_in_row_major_order() -> None:
    pool = MaxPool2D("pool", 2)
    # One image, one channel, two windows. Left window: all equal. Right window: the max 5
    # appears at (0, 1) and (1, 0); (0, 1) comes first in row-major order.
    x = np.array([[[1.0, 1.0, 0.0, 5.0], [1.0, 1.0, 5.0, 2.0]]])[..., None]
    out, cache = pool.forward(x)
    np.testing.assert_array_equal(out[0, :, :, 0], [[1.0, 5.0]])
    grad_in, _ = pool.backward(np.array([[[[10.0], [20.0]]]]), cache)
    expected = np.array([[10.0, 0.0, 0.0, 20.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(grad_in[0, :, :, 0], expected)
    np.testing.assert_array_equal(pool.mask(cache)[0, :, :, 0], expected != 0)


@pytest.mark.parametrize(("pool_size", "stride"), [(2, 2), (3, 3), (3, 2), (2, 1)])
def test_maxpool_constant_input_routes_each_window_to_its_first_cell(
    pool_size: int, stride: int
) -> None:
    x = np.ones((1, 7, 8, 2))
    layer = MaxPool2D("pool", pool_size, stride)
    out, cache = layer.forward(x)
    grad_in, _ = layer.backward(np.ones_like(out), cache)
    expected = np.zeros_like(x)
    oh, ow = out.shape[1:3]
    for oy in range(oh):
        for ox in range(ow):
            expected[0, oy * stride, ox * stride, :] += 1.0
    np.testing.assert_array_equal(grad_in, expected)


@pytest.mark.parametrize(("h", "w"), [(6, 8), (7, 9)])
def test_maxpool_mask_has_one_winner_per_window_with_ties(
    h: int, w: int, rng: np.random.Generator
) -> None:
    """Small integers make ties common; non-overlapping windows still have one winner each."""
    x = rng.integers(0, 3, size=(3, h, w, 4)).astype(np.float64)
    x[0] = 0.0  # an all-zero image: every window is a 4-way tie (like a blank canvas after ReLU)
    layer = MaxPool2D("pool", 2)
    out, cache = layer.forward(x)
    mask = layer.mask(cache)
    oh, ow = h // 2, w // 2
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask.sum(axis=(1, 2, 3)), [oh * ow * 4] * 3)
    windows = mask[:, : 2 * oh, : 2 * ow].reshape(3, oh, 2, ow, 2, 4)
    np.testing.assert_array_equal(windows.sum(axis=(2, 4)), np.ones((3, oh, ow, 4)))
    assert not mask[:, 2 * oh :].any()
    assert not mask[:, :, 2 * ow :].any()
    # every winner holds its window's maximum
    winners = np.where(windows == 1, x[:, : 2 * oh, : 2 * ow].reshape(windows.shape), -np.inf)
    np.testing.assert_array_equal(winners.max(axis=(2, 4)), out)
    # the gradient goes only where the mask is
    grad_in, _ = layer.backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(grad_in != 0, mask == 1)


@pytest.mark.parametrize(("n", "h", "w", "c", "pool", "stride"), POOL_CASES)
def test_avgpool_gradients(
    n: int, h: int, w: int, c: int, pool: int, stride: int, rng: np.random.Generator
) -> None:
    check_layer(AvgPool2D("pool", pool, stride), rng.standard_normal((n, h, w, c)), rng)


# --- Tanh, Sigmoid, BatchNorm --------------------------------------------------------------


@pytest.mark.parametrize("layer", [Tanh("tanh"), Sigmoid("sigmoid")], ids=lambda layer: layer.kind)
def test_squashing_activation_gradients(layer: Layer, rng: np.random.Generator) -> None:
    check_layer(layer, rng.standard_normal((2, 4, 5, 3)) * 2, rng)


def test_sigmoid_saturates_without_overflow() -> None:
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype=np.float32)
    with np.errstate(all="raise"):
        out, cache = Sigmoid("s").forward(x)
        grad, _ = Sigmoid("s").backward(np.ones_like(x), cache)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)
    assert np.isfinite(grad).all()


def batchnorm(c: int, rng: np.random.Generator) -> BatchNorm:
    """gamma and beta away from 1 and 0, running statistics away from 0 and 1."""
    layer = BatchNorm("bn", c)
    layer.params["gamma"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    layer.params["beta"] = rng.standard_normal(c).astype(np.float32)
    layer.buffers["running_mean"][...] = rng.standard_normal(c)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, c)
    return layer


@pytest.mark.parametrize("shape", [(3, 4, 5, 3), (6, 4)], ids=["maps", "vectors"])
@pytest.mark.parametrize("training", [True, False], ids=["batch-stats", "running-stats"])
def test_batchnorm_gradients(
    shape: tuple[int, ...], training: bool, rng: np.random.Generator
) -> None:
    """In training the statistics depend on x itself, which the backward must account for."""
    layer = batchnorm(shape[-1], rng)
    x = rng.standard_normal(shape) * 2 + 1
    check_layer(layer, x, rng, training=training)


# --- Dense, ReLU, Flatten, Dropout ---------------------------------------------------------


def test_dense_gradients(rng: np.random.Generator) -> None:
    layer = Dense("fc", 5, 4, rng=rng)
    layer.params["bias"] = rng.standard_normal(4)
    check_layer(layer, rng.standard_normal((3, 5)), rng)


def test_dense_without_bias_gradients(rng: np.random.Generator) -> None:
    layer = Dense("fc", 6, 3, bias=False, rng=rng)
    assert "bias" not in layer.params
    check_layer(layer, rng.standard_normal((4, 6)), rng)


def test_relu_gradients_away_from_zero(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 4, 5, 3))
    x = np.sign(x) * (0.1 + np.abs(x))  # |x| >= 0.1: no kink within EPS
    check_layer(ReLU("relu"), x, rng)


def test_relu_gradient_at_zero_is_zero() -> None:
    grad_in, _ = ReLU("relu").backward(np.ones(3), ReLU("relu").forward(np.zeros(3))[1])
    np.testing.assert_array_equal(grad_in, np.zeros(3))


def test_flatten_gradients(rng: np.random.Generator) -> None:
    check_layer(Flatten("flat"), rng.standard_normal((2, 3, 4, 2)), rng)


def test_dropout_training_gradients_with_a_fixed_rng(rng: np.random.Generator) -> None:
    layer = Dropout("drop", 0.4)
    x = rng.standard_normal((3, 40))
    out, _cache = layer.forward(x, training=True, rng=np.random.default_rng(7))
    dropped = out == 0
    assert 0.2 < dropped.mean() < 0.6, "about 40% of units should be zeroed"
    np.testing.assert_allclose(out[~dropped], x[~dropped] / 0.6, rtol=1e-12)
    check_layer(layer, x, rng, training=True, forward_rng_seed=7)


def test_dropout_is_identity_in_inference() -> None:
    x = np.arange(12.0).reshape(3, 4)
    out, cache = Dropout("drop", 0.5).forward(x)
    np.testing.assert_array_equal(out, x)
    grad, _ = Dropout("drop", 0.5).backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(grad, np.ones_like(x))


# --- loss and the whole network ---------------------------------------------------------


def test_softmax_cross_entropy_gradient(rng: np.random.Generator) -> None:
    logits = rng.standard_normal((5, 7)) * 3
    labels = rng.integers(0, 7, 5)
    loss, grad = softmax_cross_entropy(logits, labels)
    # the value, from the textbook definition
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)
    numeric = numerical_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert_grad_close(grad, numeric, "softmax_cross_entropy d/dlogits")


def small_net(rng: np.random.Generator) -> Sequential:
    """conv (stride 2, same) -> relu -> pool -> flatten -> dense, in float64."""
    model = Sequential(
        [
            Conv2D("conv", 2, 4, 3, stride=2, padding="same", rng=rng),
            ReLU("relu"),
            MaxPool2D("pool", 2),
            Flatten("flat"),
            Dense("fc", 2 * 2 * 4, 3, rng=rng),
        ],
        input_shape=(9, 9, 2),
    )
    for layer in model:
        to_float64(layer)
        if "bias" in layer.params:
            layer.params["bias"] = rng.standard_normal(layer.params["bias"].shape) * 0.1
    return model


def test_sequential_gradients_including_input(rng: np.random.Generator) -> None:
    model = small_net(rng)
    x = rng.standard_normal((2, 9, 9, 2))
    labels = np.array([0, 2])

    def loss() -> float:
        return softmax_cross_entropy(model.forward(x), labels)[0]

    logits, caches = model.forward_train(x, training=False)
    np.testing.assert_array_equal(logits, model.forward(x))
    _, grad_logits = softmax_cross_entropy(logits, labels)
    grad_x, grads = model.backward(grad_logits, caches)
    params = model.parameters()
    assert set(grads) == set(params)
    assert_grad_close(grad_x, numerical_grad(loss, x), "model d/dx")
    for key, param in params.items():
        assert_grad_close(grads[key], numerical_grad(loss, param), f"model d/d{key}")
