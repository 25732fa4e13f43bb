"""server.inference.Predictor against the engine it wraps: channels-first transposes, the
softmax it appends, pooling masks, saliency, the architecture table and weight layouts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from server.cnn import Conv2D, Dense, MaxPool2D, Sequential, save_model, softmax
from server.cnn.architectures import mnist_cnn
from server.inference import Predictor, channels_first


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inference") / "model.npz"
    save_model(path, mnist_cnn(seed=3), {"test_accuracy": 0.5})
    return path


@pytest.fixture(scope="module")
def predictor(weights: Path) -> Predictor:
    return Predictor.from_file(weights)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """(28, 28) float32 in [0, 1]: a blurred bar and ring, sparse like a digit."""
    y, x = np.mgrid[:28, :28]
    ring = np.exp(-(((np.hypot(y - 12, x - 14) - 6) / 1.5) ** 2))
    bar = np.exp(-(((x - 17) / 1.2) ** 2)) * (y > 12) * (y < 25)
    return np.clip(ring + bar, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def engine(predictor: Predictor) -> Sequential:
    return predictor.model


def test_from_file_records_the_files_sha256_and_metadata(
    predictor: Predictor, weights: Path
) -> None:
    assert predictor.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert predictor.metadata == {"test_accuracy": 0.5}
    assert predictor.input_shape == (28, 28, 1)


def test_channels_first_moves_channels_and_keeps_vectors() -> None:
    hwc = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    chw = channels_first(hwc)
    assert chw.shape == (4, 2, 3)
    assert chw[3, 1, 2] == hwc[1, 2, 3]
    vector = np.arange(5)
    assert channels_first(vector) is vector


# --- explain -------------------------------------------------------------------------------


def test_explain_label_and_probabilities_are_the_engines(
    predictor: Predictor, engine: Sequential, image: np.ndarray
) -> None:
    explained = predictor.explain(image, activations=False, saliency=False, target=None)
    logits = engine.forward(image[None, :, :, None])  # (1, 10)
    np.testing.assert_allclose(explained.probabilities, softmax(logits)[0], rtol=1e-6)
    assert explained.label == int(logits.argmax())
    assert explained.layers is None
    assert explained.saliency is None
    assert explained.target is None


def test_explain_layers_are_the_trace_channels_first_then_softmax(
    predictor: Predictor, engine: Sequential, image: np.ndarray
) -> None:
    explained = predictor.explain(image, activations=True, saliency=False, target=None)
    trace = engine.trace(image[None, :, :, None])
    assert explained.layers is not None
    assert [m.name for m in explained.layers] == [t.name for t in trace.layers] + ["softmax"]
    assert [m.kind for m in explained.layers] == [t.kind for t in trace.layers] + ["softmax"]
    for mine, traced in zip(explained.layers, trace.layers, strict=False):
        output = traced.output[0]  # (H, W, C) or (F,)
        if output.ndim == 3:
            np.testing.assert_array_equal(mine.data, output.transpose(2, 0, 1))
        else:
            np.testing.assert_array_equal(mine.data, output)
    last = explained.layers[-1]
    assert (last.name, last.kind, last.mask) == ("softmax", "softmax", None)
    np.testing.assert_array_equal(last.data, explained.probabilities)


def test_explain_masks_only_for_pools_transposed_with_one_winner_per_window(
    predictor: Predictor, engine: Sequential, image: np.ndarray
) -> None:
    explained = predictor.explain(image, activations=True, saliency=False, target=None)
    assert explained.layers is not None
    trace = engine.trace(image[None, :, :, None])
    by_name = {t.name: t for t in trace.layers}
    previous, pools = None, 0
    for layer in explained.layers:
        is_pool = layer.name != "softmax" and isinstance(engine.layer(layer.name), MaxPool2D)
        if not is_pool:
            assert layer.mask is None, layer.name
            previous = layer
            continue
        assert layer.mask is not None
        assert previous is not None
        assert layer.mask.dtype == np.uint8
        assert layer.mask.shape == previous.data.shape  # the pool's input, (C, H, W)
        np.testing.assert_array_equal(
            layer.mask,
            by_name[layer.name].mask[0].transpose(2, 0, 1),  # type: ignore[index]
        )
        c, h, w = layer.mask.shape
        assert np.all(layer.mask.reshape(c, h // 2, 2, w // 2, 2).sum(axis=(2, 4)) == 1)
        winners = (previous.data * layer.mask).reshape(c, h // 2, 2, w // 2, 2).sum(axis=(2, 4))
        np.testing.assert_array_equal(winners, layer.data)
        previous, pools = layer, pools + 1
    assert pools == 2


def test_explain_saliency_is_input_gradient_times_input(
    predictor: Predictor, engine: Sequential, image: np.ndarray
) -> None:
    explained = predictor.explain(image, activations=False, saliency=True, target=None)
    x = image[None, :, :, None]
    trace = engine.trace(x)
    grad_logits = np.zeros_like(trace.logits)
    grad_logits[0, explained.label] = 1.0
    grad_input, _ = engine.backward(grad_logits, trace.caches)
    assert explained.target == explained.label
    assert explained.saliency is not None
    assert explained.saliency.shape == (28, 28)
    np.testing.assert_allclose(explained.saliency, (grad_input * x)[0, :, :, 0], rtol=1e-6)


def test_explain_saliency_for_another_target_matches_finite_differences(
    predictor: Predictor, engine: Sequential, image: np.ndarray
) -> None:
    """Where the target logit is smooth (one-sided slopes agree: no ReLU or max-pool switch
    within eps), gradient times input equals the central difference times input."""
    explained = predictor.explain(image, activations=False, saliency=True, target=6)
    assert explained.target == 6
    assert explained.saliency is not None
    strongest = np.argsort(np.abs(explained.saliency).ravel())[::-1][:8]
    eps = np.float32(1e-3)

    def logit(picture: np.ndarray) -> float:
        return float(engine.forward(picture[None, :, :, None])[0, 6])

    checked = 0
    for flat in strongest:
        y, x = divmod(int(flat), 28)
        up, down = image.copy(), image.copy()
        up[y, x] += eps
        down[y, x] -= eps
        here, above, below = logit(image), logit(up), logit(down)
        forward, backward = (above - here) / eps, (here - below) / eps
        if abs(forward - backward) > 0.02 * max(abs(forward), abs(backward)):
            continue  # a kink within eps: the gradient there is one-sided
        central = (above - below) / (2 * eps)
        assert explained.saliency[y, x] == pytest.approx(central * image[y, x], rel=0.01, abs=1e-4)
        checked += 1
    assert checked >= 4, "too few smooth pixels to check"


def test_predict_batches_equal_one_explain_each(predictor: Predictor, image: np.ndarray) -> None:
    batch = np.stack([image, image[::-1], image.T, np.zeros_like(image)])  # (4, 28, 28)
    probabilities = predictor.predict(batch)
    assert probabilities.shape == (4, 10)
    for row, single in zip(probabilities, batch, strict=True):
        explained = predictor.explain(single, activations=False, saliency=False, target=None)
        np.testing.assert_allclose(row, explained.probabilities, rtol=1e-5, atol=1e-7)


# --- architecture --------------------------------------------------------------------------


def test_architecture_rows_follow_the_engine_then_softmax(
    predictor: Predictor, engine: Sequential
) -> None:
    rows = predictor.architecture()
    assert [r.name for r in rows] == [layer.name for layer in engine.layers] + ["softmax"]
    assert [r.kind for r in rows] == [layer.kind for layer in engine.layers] + ["softmax"]
    for row, layer, shape in zip(rows, engine.layers, engine.output_shapes, strict=False):
        expected = [shape[2], shape[0], shape[1]] if len(shape) == 3 else list(shape)
        assert row.output_shape == expected, row.name
        assert row.parameters == sum(int(p.size) for p in layer.params.values()), row.name
        if isinstance(layer, Conv2D):
            assert (row.kernel_size, row.stride, row.padding) == (3, 1, "same")
        elif isinstance(layer, MaxPool2D):
            assert (row.kernel_size, row.stride, row.padding) == (2, 2, "valid")
        else:
            assert (row.kernel_size, row.stride, row.padding) == (None, None, None)
    softmax_row = rows[-1]
    assert (softmax_row.output_shape, softmax_row.parameters) == ([10], 0)
    assert sum(r.parameters for r in rows) == engine.parameter_count() == 421642


# --- layer weights -------------------------------------------------------------------------


def test_conv_weights_come_out_as_out_in_kh_kw(predictor: Predictor, engine: Sequential) -> None:
    for name in ("conv1", "conv2"):
        kind, weight, bias = predictor.layer_weights(name)
        layer = engine.layer(name)
        assert isinstance(layer, Conv2D)
        stored = layer.params["weight"]  # (kh, kw, C, F)
        assert kind == "conv2d"
        assert weight is not None
        assert bias is not None
        assert weight.shape == (stored.shape[3], stored.shape[2], stored.shape[0], stored.shape[1])
        for f, c, i, j in [(0, 0, 0, 0), (7, 0, 2, 1), (weight.shape[0] - 1, 0, 1, 2)]:
            assert weight[f, c, i, j] == stored[i, j, c, f]
        np.testing.assert_array_equal(bias, layer.params["bias"])


def test_dense_weights_come_out_as_out_in(predictor: Predictor, engine: Sequential) -> None:
    for name, shape in (("fc1", (128, 3136)), ("fc2", (10, 128))):
        kind, weight, bias = predictor.layer_weights(name)
        layer = engine.layer(name)
        assert isinstance(layer, Dense)
        assert kind == "dense"
        assert weight is not None
        assert weight.shape == shape
        np.testing.assert_array_equal(weight, layer.params["weight"].T)
        np.testing.assert_array_equal(bias, layer.params["bias"])


def test_conv_layout_is_what_torch_would_compute_with(
    predictor: Predictor, engine: Sequential, image: np.ndarray
) -> None:
    # Cross-correlating with the [F, C, kh, kw] kernels reproduces the engine's conv1 output.
    _, weight, bias = predictor.layer_weights("conv1")
    assert weight is not None
    assert bias is not None
    padded = np.pad(image.astype(np.float64), 1)  # (30, 30)
    out = np.zeros((weight.shape[0], 28, 28)) + bias[:, None, None]
    for i in range(3):
        for j in range(3):
            out += weight[:, 0, i, j][:, None, None] * padded[None, i : i + 28, j : j + 28]
    traced = engine.trace(image[None, :, :, None]).layers[0].output[0].transpose(2, 0, 1)
    np.testing.assert_allclose(out, traced, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("relu1", "relu"), ("pool1", "maxpool2d"), ("flatten", "flatten"), ("dropout", "dropout")],
)
def test_weightless_layers_give_none(predictor: Predictor, name: str, kind: str) -> None:
    assert predictor.layer_weights(name) == (kind, None, None)


def test_softmax_is_a_layer_without_weights(predictor: Predictor) -> None:
    assert predictor.layer_weights("softmax") == ("softmax", None, None)


def test_unknown_layer_raises_key_error(predictor: Predictor) -> None:
    with pytest.raises(KeyError, match="conv9"):
        predictor.layer_weights("conv9")
