"""Sequential: shapes, spec round trip, error messages, trace, and that it can actually learn."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np
import pytest

from server.cnn import (
    LAYER_KINDS,
    Adam,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    softmax_cross_entropy,
)
from server.cnn.architectures import build_preset, mnist_cnn

MNIST_SHAPES = [
    (28, 28, 32),
    (28, 28, 32),
    (14, 14, 32),
    (14, 14, 64),
    (14, 14, 64),
    (7, 7, 64),
    (3136,),
    (128,),
    (128,),
    (128,),
    (10,),
]


def test_mnist_cnn_output_shapes_and_parameter_count() -> None:
    model = mnist_cnn()
    assert model.output_shapes == MNIST_SHAPES
    expected = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (3136 * 128 + 128) + (128 * 10 + 10)
    assert model.parameter_count() == expected
    assert [layer.kind for layer in model] == [
        "conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d",
        "flatten", "dense", "relu", "dropout", "dense",
    ]  # fmt: skip


def test_mnist_cnn_is_seeded() -> None:
    a, b, c = mnist_cnn(seed=5), mnist_cnn(seed=5), mnist_cnn(seed=6)
    for key, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[key])
    assert not np.array_equal(a.parameters()["conv1.weight"], c.parameters()["conv1.weight"])


def test_spec_round_trip_rebuilds_the_same_model() -> None:
    model = Sequential(
        [
            Conv2D("c1", 1, 4, 5, stride=2, padding="same"),
            ReLU("r1"),
            MaxPool2D("p1", 3, 2),
            Conv2D("c2", 4, 6, 3, padding=1, bias=False),
            Flatten("f"),
            Dense("d", 3 * 3 * 6, 7, bias=False),
        ],
        input_shape=(23, 21, 1),
    )
    spec = json.loads(json.dumps(model.spec()))  # must survive JSON
    rebuilt = Sequential.from_spec(spec)
    assert rebuilt.spec() == model.spec()
    assert rebuilt.output_shapes == model.output_shapes
    assert [(a.kind, a.name) for a in rebuilt] == [(b.kind, b.name) for b in model]
    assert {k: v.shape for k, v in rebuilt.parameters().items()} == {
        k: v.shape for k, v in model.parameters().items()
    }
    mnist = mnist_cnn()
    assert Sequential.from_spec(json.loads(json.dumps(mnist.spec()))).spec() == mnist.spec()


def test_every_layer_kind_is_registered() -> None:
    assert set(LAYER_KINDS) == {
        "conv2d",
        "relu",
        "tanh",
        "sigmoid",
        "maxpool2d",
        "avgpool2d",
        "batchnorm",
        "flatten",
        "dense",
        "dropout",
    }


def test_unknown_layer_kind_is_named() -> None:
    spec = mnist_cnn().spec()
    spec["layers"][1] = {"kind": "gelu", "name": "act"}
    with pytest.raises(ValueError, match="unknown layer kind 'gelu'"):
        Sequential.from_spec(spec)


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"unique.*'r'"):
        Sequential([ReLU("r"), Flatten("f"), ReLU("r")], input_shape=(2, 2, 1))


def test_wrong_input_shape_message() -> None:
    model = mnist_cnn()
    with pytest.raises(ValueError, match=r"expected input \(N, 28, 28, 1\), got \(2, 28, 28\)"):
        model.forward(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"got \(1, 28, 28, 3\)"):
        model.trace(np.zeros((1, 28, 28, 3), np.float32))
    with pytest.raises(ValueError, match=r"got \(1, 27, 28, 1\)"):
        model.forward_train(np.zeros((1, 27, 28, 1), np.float32))


def test_layer_lookup() -> None:
    model = mnist_cnn()
    assert model.layer("conv2").kind == "conv2d"
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        model.layer("conv9")


def test_trace_matches_forward_and_has_masks_only_for_pools(rng: np.random.Generator) -> None:
    model = mnist_cnn(seed=1)
    x = rng.random((3, 28, 28, 1), dtype=np.float32)
    trace = model.trace(x)
    np.testing.assert_array_equal(trace.logits, model.forward(x))
    np.testing.assert_array_equal(trace.layers[-1].output, trace.logits)
    assert trace.input is x
    assert len(trace.layers) == len(trace.caches) == len(model.layers)
    for layer, layer_trace, shape in zip(model, trace.layers, model.output_shapes, strict=True):
        assert (layer_trace.name, layer_trace.kind) == (layer.name, layer.kind)
        assert layer_trace.output.shape == (3, *shape)
        if layer.kind == "maxpool2d":
            assert layer_trace.mask is not None
            assert layer_trace.mask.dtype == np.uint8
        else:
            assert layer_trace.mask is None, layer.name
    pool1 = trace.layers[2]
    assert pool1.mask.shape == (3, 28, 28, 32)
    # one winner per 2x2 window: the mask sums to out_h * out_w * C per image
    np.testing.assert_array_equal(pool1.mask.sum(axis=(1, 2, 3)), [14 * 14 * 32] * 3)


def test_forward_train_caches_feed_backward(rng: np.random.Generator) -> None:
    model = mnist_cnn(seed=1)
    x = rng.random((2, 28, 28, 1), dtype=np.float32)
    logits, caches = model.forward_train(x, training=False)
    np.testing.assert_array_equal(logits, model.forward(x))
    grad_x, grads = model.backward(np.ones_like(logits), caches)
    assert set(grads) == set(model.parameters())
    assert grad_x.shape == x.shape
    # training mode applies dropout: logits differ from inference, but are seeded
    a, _ = model.forward_train(x, np.random.default_rng(1))
    b, _ = model.forward_train(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, logits)


def test_load_state_dict_names_key_and_shapes() -> None:
    model = mnist_cnn()
    state = {k: v.copy() for k, v in model.parameters().items()}
    state["fc1.weight"] = np.zeros((3136, 64), np.float32)
    with pytest.raises(ValueError, match=r"'fc1\.weight'.*\(3136, 64\).*\(3136, 128\)"):
        model.load_state_dict(state, source="my.npz")

    state = {k: v.copy() for k, v in model.parameters().items()}
    del state["conv2.bias"]
    state["conv3.weight"] = np.zeros(1)
    with pytest.raises(
        ValueError, match=r"my\.npz.*missing.*conv2\.bias.*unexpected.*conv3\.weight"
    ):
        model.load_state_dict(state, source="my.npz")


def test_load_state_dict_copies_into_live_parameters() -> None:
    model = mnist_cnn(seed=0)
    other = mnist_cnn(seed=9)
    live = model.parameters()["conv1.weight"]
    model.load_state_dict(other.parameters())
    assert model.parameters()["conv1.weight"] is live  # optimizers hold these references
    for key, value in other.parameters().items():
        np.testing.assert_array_equal(model.parameters()[key], value)
        assert model.parameters()[key] is not value  # copied, not aliased


# --- learning ------------------------------------------------------------------------------


def mnist_subset(n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The first n MNIST training images if MNIST_DIR is set, else None."""
    if not os.environ.get("MNIST_DIR"):
        return None
    from server.training.mnist import load_mnist

    data = load_mnist(os.environ["MNIST_DIR"], verify=False)
    return data.train_images[:n], data.train_labels[:n]


def test_overfits_32_samples(make_digits: Callable[..., tuple[np.ndarray, np.ndarray]]) -> None:
    """A model that cannot memorise 32 images has a broken forward, backward or optimizer."""
    images, labels = mnist_subset(32) or make_digits(32, seed=1)
    x = (images.astype(np.float32) / 255.0)[..., None]
    y = labels.astype(np.int64)
    model = mnist_cnn(seed=0, conv1=8, conv2=16, hidden=64, dropout=0.0)
    optimizer = Adam(model.parameters(), lr=3e-3)
    first_loss = None
    for step in range(200):
        logits, caches = model.forward_train(x, np.random.default_rng(step))
        loss, grad = softmax_cross_entropy(logits, y)
        first_loss = first_loss if first_loss is not None else loss
        if step % 5 == 0 and (model.forward(x).argmax(axis=1) == y).all():
            break
        _, grads = model.backward(grad, caches)
        optimizer.step(grads)
    accuracy = float((model.forward(x).argmax(axis=1) == y).mean())
    assert accuracy == 1.0, f"train accuracy {accuracy} after {step + 1} steps"
    assert loss < 0.5 * first_loss


def test_short_training_lowers_the_loss(
    make_digits: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    """The shipped layer stack (narrower, to stay fast), with dropout: 12 Adam steps help."""
    images, labels = mnist_subset(128) or make_digits(128, seed=2)
    x = (images.astype(np.float32) / 255.0)[..., None]
    y = labels.astype(np.int64)
    model = mnist_cnn(seed=0, conv1=8, conv2=16, hidden=32, dropout=0.3)
    before, _ = softmax_cross_entropy(model.forward(x), y)
    optimizer = Adam(model.parameters(), lr=1e-2)
    gen = np.random.default_rng(0)
    for _ in range(12):
        batch = gen.choice(len(x), 32, replace=False)
        logits, caches = model.forward_train(x[batch], gen)
        _, grad = softmax_cross_entropy(logits, y[batch])
        _, grads = model.backward(grad, caches)
        optimizer.step(grads)
    after, _ = softmax_cross_entropy(model.forward(x), y)
    assert after < 0.85 * before, f"loss {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("preset", ["default", "tiny", "lenet5", "mlp"])
def test_parameter_gradients_are_backwards_without_the_input(preset: str) -> None:
    """Training skips the first layer's input gradient; the parameters' gradients must not move."""
    model = build_preset(preset, seed=3)
    x = np.random.default_rng(4).random((5, 28, 28, 1), dtype=np.float32)
    logits, caches = model.forward_train(x, np.random.default_rng(5))
    grad_logits = np.random.default_rng(6).standard_normal(logits.shape).astype(np.float32)
    _, full = model.backward(grad_logits, caches)
    only = model.parameter_gradients(grad_logits, caches)
    assert only.keys() == full.keys() == model.parameters().keys()
    for key, value in full.items():
        np.testing.assert_array_equal(only[key], value, err_msg=key)
