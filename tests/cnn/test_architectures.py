"""Every preset, and a network of stride-2 convolutions with no pooling, learns and can be looked
inside: each layer of the trace renders (non-empty, finite, not blank), saliency has a signal, the
architecture table gives every window layer its geometry."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from server.cnn import Adam, AvgPool2D, BatchNorm, Conv2D, MaxPool2D, Sequential
from server.cnn import softmax_cross_entropy as xent
from server.cnn.architectures import PRESETS, build_preset
from server.cnn.spec import build_from_spec
from server.explain.edits import Ablation, Edits
from server.inference import Predictor

Digits = Callable[..., tuple[np.ndarray, np.ndarray]]

STRIDED = {
    "input_shape": [28, 28, 1],
    "layers": [
        {"kind": "conv2d", "name": "conv1", "in_channels": 1, "out_channels": 8, "kernel_size": 3,
         "stride": 2, "padding": "same"},
        {"kind": "relu", "name": "relu1"},
        {"kind": "conv2d", "name": "conv2", "in_channels": 8, "out_channels": 16, "kernel_size": 3,
         "stride": 2, "padding": "same"},
        {"kind": "batchnorm", "name": "bn2", "num_features": 16},
        {"kind": "relu", "name": "relu2"},
        {"kind": "conv2d", "name": "conv3", "in_channels": 16, "out_channels": 16,
         "kernel_size": 3, "stride": 2, "padding": 1},
        {"kind": "sigmoid", "name": "sig3"},
        {"kind": "flatten", "name": "flatten"},
        {"kind": "dense", "name": "fc", "in_features": 4 * 4 * 16, "out_features": 10},
    ],
}  # fmt: skip

NETWORKS = [*sorted(PRESETS), "strided"]


def network(name: str, seed: int = 0) -> Sequential:
    if name == "strided":
        return build_from_spec(STRIDED, seed=seed)
    return build_preset(name, seed=seed)


def digits(make_digits: Digits, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = make_digits(n, seed=seed)
    return images.astype(np.float32)[..., None] / 255.0, labels.astype(np.int64)


@pytest.mark.parametrize("name", NETWORKS)
def test_loss_falls_in_a_few_steps(name: str, make_digits: Digits) -> None:
    """Fifteen Adam steps on one batch of synthetic digits halve the training loss."""
    model = network(name, seed=1)
    x, y = digits(make_digits, 32, seed=4)
    optimizer = Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        logits, caches = model.forward_train(x, np.random.default_rng(0))
        loss, grad = xent(logits, y)
        _, grads = model.backward(grad, caches)
        optimizer.step(grads)
        losses.append(loss)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", NETWORKS)
def test_explain_renders_every_layer(name: str, make_digits: Digits) -> None:
    model = network(name)
    for layer in model:  # inference with running statistics that are not the identity
        if isinstance(layer, BatchNorm):
            layer.buffers["running_var"][...] = 0.5
    before = {k: v.copy() for k, v in model.state_dict().items()}
    predictor = Predictor(model, {}, "0" * 64)
    x, _ = digits(make_digits, 1, seed=5)
    explanation = predictor.explain(x[0, :, :, 0], activations=True, saliency=True, target=3)
    assert explanation.layers is not None
    assert [m.name for m in explanation.layers] == [*(layer.name for layer in model), "softmax"]
    for layer_map, shape in zip(explanation.layers, model.output_shapes, strict=False):
        expected = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
        assert layer_map.data.shape == expected, layer_map.name
        assert layer_map.data.size > 0, layer_map.name
        assert np.isfinite(layer_map.data).all(), layer_map.name
        assert np.abs(layer_map.data).max() > 0, f"{layer_map.name} renders blank"
        has_mask = layer_map.kind == "maxpool2d"
        assert (layer_map.mask is not None) == has_mask, layer_map.name
    assert explanation.saliency is not None
    assert explanation.saliency.shape == (28, 28)
    assert np.abs(explanation.saliency).max() > 0
    occlusion = predictor.explain(
        x[0, :, :, 0], activations=False, saliency=True, target=None, saliency_method="occlusion"
    )
    assert occlusion.saliency is not None
    assert np.isfinite(occlusion.saliency).all()
    # an ablation edit on every layer but the last works for every kind
    ablate = [Ablation(layer.name, [0]) for layer in model.layers[:-1]]
    edited = predictor.explain(
        x[0, :, :, 0], activations=True, saliency=False, target=None, edits=Edits(ablate=ablate)
    )
    assert edited.baseline is not None
    np.testing.assert_allclose(edited.baseline, explanation.probabilities, rtol=1e-6)
    for key, value in model.state_dict().items():  # inference wrote nothing
        np.testing.assert_array_equal(value, before[key], err_msg=key)


@pytest.mark.parametrize("name", NETWORKS)
def test_architecture_table_gives_window_layers_their_geometry(name: str) -> None:
    model = network(name)
    rows = Predictor(model, {}, "0" * 64).architecture()
    assert [r.name for r in rows] == [*(layer.name for layer in model), "softmax"]
    for layer, row in zip(model, rows, strict=False):
        if isinstance(layer, Conv2D):
            expected = (layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, MaxPool2D | AvgPool2D):
            expected = (layer.pool_size, layer.stride, "valid")
        else:
            expected = (None, None, None)
        assert (row.kernel_size, row.stride, row.padding) == expected, layer.name
        assert row.parameters == sum(int(p.size) for p in layer.params.values())
    assert sum(r.parameters for r in rows) == model.parameter_count()
