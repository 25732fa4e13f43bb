"""Fused passes (server/cnn/fusion.py) against the same layers run one by one, and against
central differences in float64. PyTorch parity of the fused passes: test_torch_parity.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
)
from server.cnn.architectures import PRESETS, build_preset
from server.cnn.fusion import InPlace, PooledConv, plan

from .test_layers_gradcheck import assert_grad_close, numerical_grad


def block_model(
    input_shape: tuple[int, int, int],
    conv: dict[str, Any],
    activation: type[Layer] | None,
    pool: Layer,
    rng: np.random.Generator,
) -> Sequential:
    """conv [activation] pool, then flatten and a dense layer to 3 logits."""
    layers: list[Layer] = [Conv2D("conv", input_shape[2], rng=rng, **conv)]
    if activation is not None:
        layers.append(activation("act"))
    layers.append(pool)
    features = Sequential([*layers, Flatten("flat")], input_shape).output_shapes[-1][0]
    layers += [Flatten("flat"), Dense("fc", features, 3, rng=rng)]
    model = Sequential(layers, input_shape)
    for key, value in model.parameters().items():
        if key.endswith("bias"):  # non-zero biases, so a bias bug cannot hide
            value[...] = rng.standard_normal(value.shape) * 0.3
    return model


# (input shape, conv settings, activation, pool): each fuses into one PooledConv block
BLOCKS: list[tuple[tuple[int, int, int], dict[str, Any], type[Layer] | None, Layer]] = [
    ((8, 8, 1), {"out_channels": 4, "kernel_size": 3}, ReLU, MaxPool2D("pool", 2)),
    ((6, 10, 9), {"out_channels": 3, "kernel_size": 3, "padding": 1}, ReLU, MaxPool2D("pool", 2)),
    ((8, 8, 2), {"out_channels": 3, "kernel_size": 3}, Tanh, MaxPool2D("pool", 2)),
    (
        (10, 10, 9),
        {"out_channels": 5, "kernel_size": 3, "padding": "valid", "bias": False},
        Sigmoid,
        AvgPool2D("pool", 2),
    ),
    ((8, 6, 2), {"out_channels": 3, "kernel_size": 5, "padding": 2}, None, AvgPool2D("pool", 2)),
    ((8, 6, 2), {"out_channels": 3, "kernel_size": 3}, None, MaxPool2D("pool", 2)),
    ((12, 12, 2), {"out_channels": 4, "kernel_size": 3, "stride": 2}, ReLU, MaxPool2D("pool", 3)),
    ((14, 14, 1), {"out_channels": 6, "kernel_size": 5, "padding": 2}, Tanh, AvgPool2D("pool", 2)),
]


def layer_by_layer(
    model: Sequential, x: np.ndarray, training: bool, rng: np.random.Generator | None
) -> tuple[np.ndarray, list[Any]]:
    """forward_train without any fusion: each layer's own forward, in order."""
    caches = []
    for layer in model:
        x, cache = layer.forward(x, training=training, rng=rng)
        caches.append(cache)
    return x, caches


def assert_fused_matches_layer_by_layer(
    model: Sequential, x: np.ndarray, training: bool = False, atol: float = 1e-5
) -> None:
    fused, fused_caches = model.forward_train(x, np.random.default_rng(3), training=training)
    alone, alone_caches = layer_by_layer(model, x, training, np.random.default_rng(3))
    np.testing.assert_allclose(fused, alone, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(model.forward(x), model.trace(x).logits, rtol=1e-5, atol=atol)
    grad = np.random.default_rng(4).standard_normal(fused.shape).astype(x.dtype)
    grad_x, grads = model.backward(grad, fused_caches)
    grad_x_alone, grads_alone = model.backward(grad, alone_caches)
    assert grad_x.shape == x.shape
    np.testing.assert_allclose(grad_x, grad_x_alone, rtol=1e-5, atol=atol)
    assert set(grads) == set(grads_alone) == set(model.parameters())
    for key, value in grads.items():
        assert value.shape == model.parameters()[key].shape, key
        np.testing.assert_allclose(value, grads_alone[key], rtol=1e-5, atol=atol, err_msg=key)
    only = model.parameter_gradients(grad, fused_caches)
    for key, value in only.items():
        np.testing.assert_allclose(value, grads[key], rtol=1e-6, atol=1e-7, err_msg=key)


@pytest.mark.parametrize(("shape", "conv", "activation", "pool"), BLOCKS)
def test_a_fused_block_matches_its_layers_one_by_one(
    shape: tuple[int, int, int],
    conv: dict[str, Any],
    activation: type[Layer] | None,
    pool: Layer,
    rng: np.random.Generator,
) -> None:
    model = block_model(shape, conv, activation, pool, rng)
    assert isinstance(plan(model.layers, model.output_shapes, ())[0], PooledConv)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    assert_fused_matches_layer_by_layer(model, x)


@pytest.mark.parametrize(("shape", "conv", "activation", "pool"), BLOCKS)
def test_a_fused_block_passes_the_gradient_check(
    shape: tuple[int, int, int],
    conv: dict[str, Any],
    activation: type[Layer] | None,
    pool: Layer,
    rng: np.random.Generator,
) -> None:
    """float64 through the fused pass: its backward against central differences of its
    forward, for the input and every parameter."""
    model = block_model(shape, conv, activation, pool, rng)
    for layer in model:
        for key in layer.params:
            layer.params[key] = layer.params[key].astype(np.float64)
    x = rng.standard_normal((2, *shape))
    logits, caches = model.forward_train(x, training=False)
    R = rng.standard_normal(logits.shape)

    def loss() -> float:
        return float(np.sum(model.forward(x) * R))

    grad_x, grads = model.backward(R, caches)
    assert_grad_close(grad_x, numerical_grad(loss, x), "d/dx")
    for key, param in model.parameters().items():  # the float64 arrays, live
        assert_grad_close(grads[key], numerical_grad(loss, param), f"d/d{key}")


def test_ties_go_to_the_first_cell_as_layer_by_layer(rng: np.random.Generator) -> None:
    """Blank regions give every cell of a window the conv's bias: ties in every window, and
    with negative biases windows whose max is below 0 (no gradient through the ReLU)."""
    model = block_model((8, 8, 1), {"out_channels": 6, "kernel_size": 3}, ReLU, pool_2(), rng)
    conv = model.layer("conv")
    conv.params["bias"][...] = [0.5, -0.5, 0.0, 1.0, -1.0, 0.25]
    x = np.zeros((4, 8, 8, 1), dtype=np.float32)
    x[1:, 2:5, 3:6, 0] = rng.random((3, 3, 3))  # a little ink in three of them
    x[3] = np.round(x[3] * 2) / 2  # and repeated values
    fused, fused_caches = model.forward_train(x, training=False)
    alone, alone_caches = layer_by_layer(model, x, False, None)
    np.testing.assert_array_equal(fused, alone)
    grad = rng.standard_normal(fused.shape).astype(np.float32)
    grad_x, grads = model.backward(grad, fused_caches)
    grad_x_alone, grads_alone = model.backward(grad, alone_caches)
    np.testing.assert_allclose(grad_x, grad_x_alone, rtol=1e-6, atol=1e-7)
    for key, value in grads.items():
        np.testing.assert_allclose(value, grads_alone[key], rtol=1e-5, atol=1e-6, err_msg=key)


def pool_2() -> MaxPool2D:
    return MaxPool2D("pool", 2)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("training", [False, True])
def test_every_preset_fused_matches_layer_by_layer(name: str, training: bool) -> None:
    """Training mode too: dropout draws the same mask from the same seed, batch norm uses the
    batch's statistics (each pass moves the running ones, which forward_train then ignores)."""
    model = build_preset(name, seed=2)
    x = np.random.default_rng(5).random((6, 28, 28, 1), dtype=np.float32)
    assert_fused_matches_layer_by_layer(model, x, training)


def test_the_default_network_plan() -> None:
    model = build_preset("default")
    steps = plan(model.layers, model.output_shapes, ())
    assert [step.name for step in steps] == [
        "conv1+relu1+pool1",
        "conv2+relu2+pool2",
        "flatten",
        "fc1",
        "relu3",
        "dropout",
        "fc2",
    ]
    assert isinstance(steps[4], InPlace)


@pytest.mark.parametrize(
    ("keep", "first_steps"),
    [
        ({"relu1"}, ["conv1", "relu1", "pool1"]),  # the ReLU's output is kept: nothing fused
        ({"conv1"}, ["conv1", "relu1", "pool1"]),  # kept: the ReLU may not write over it
        ({"pool1"}, ["conv1+relu1+pool1"]),  # the block's own output is kept as it is
    ],
)
def test_kept_outputs_are_never_fused_away(keep: set[str], first_steps: list[str]) -> None:
    model = build_preset("default")
    steps = plan(model.layers, model.output_shapes, keep)
    assert [step.name for step in steps[: len(first_steps)]] == first_steps
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    logits, kept = model.forward_keeping(x, keep)
    trace = {t.name: t.output for t in model.trace(x).layers}
    for name in keep:
        np.testing.assert_allclose(kept[name], trace[name], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits, model.trace(x).logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("layers", "fused"),
    [
        # a pool that leaves a row and a column out (7x7 maps, 2x2 windows): not fused
        (lambda r: [Conv2D("c", 1, 2, 3, rng=r), ReLU("a"), MaxPool2D("p", 2)], False),
        # overlapping windows: not fused
        (lambda r: [Conv2D("c", 1, 2, 3, rng=r), ReLU("a"), MaxPool2D("p", 3, 2)], False),
        # batch norm between the conv and its ReLU: the ReLU runs in place after it
        (lambda r: [Conv2D("c", 1, 2, 3, rng=r), BatchNorm("b", 2), ReLU("a")], False),
        # two activations in a row: the second is no block's
        (lambda r: [Conv2D("c", 1, 2, 3, rng=r), ReLU("a"), Tanh("t"), AvgPool2D("p")], False),
    ],
)
def test_what_is_not_a_block_still_runs_right(
    layers: Callable[[np.random.Generator], list[Layer]], fused: bool, rng: np.random.Generator
) -> None:
    model = Sequential([*layers(rng), Flatten("f"), Dropout("d", 0.3)], (7, 7, 1))
    steps = plan(model.layers, model.output_shapes, ())
    assert any(isinstance(step, PooledConv) for step in steps) == fused
    x = rng.standard_normal((3, 7, 7, 1)).astype(np.float32)
    assert_fused_matches_layer_by_layer(model, x, training=True)
