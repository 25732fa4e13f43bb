"""GET /api/v1/model and /api/v1/model/layers/{name}/weights against the engine and the file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.cnn import Conv2D, Dense, MaxPool2D, Sequential

CONTRACT_TOTAL_PARAMETERS = 421642  # the number docs/api-contract.md gives for the architecture
METRIC_KEYS = ("test_accuracy", "epochs", "confusion_matrix")
WEIGHTED = ("conv1", "conv2", "fc1", "fc2")
WEIGHTLESS = {
    "relu1": "relu",
    "pool1": "maxpool2d",
    "relu2": "relu",
    "pool2": "maxpool2d",
    "flatten": "flatten",
    "relu3": "relu",
    "dropout": "dropout",
    "softmax": "softmax",
}


@pytest.fixture(scope="module")
def card(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/v1/model")
    assert response.status_code == 200
    return response.json()


def channels_first(shape: tuple[int, ...]) -> list[int]:
    """(H, W, C) -> [C, H, W]; vectors as they are."""
    return [shape[2], shape[0], shape[1]] if len(shape) == 3 else list(shape)


# --- the model card ------------------------------------------------------------------------


def test_card_lists_the_engines_layers_in_order_then_softmax(
    card: dict[str, Any], engine: Sequential
) -> None:
    names = [row["name"] for row in card["layers"]]
    kinds = [row["kind"] for row in card["layers"]]
    assert names == [layer.name for layer in engine.layers] + ["softmax"]
    assert kinds == [layer.kind for layer in engine.layers] + ["softmax"]


def test_card_shapes_are_channels_first_and_match_the_engine(
    card: dict[str, Any], engine: Sequential
) -> None:
    assert card["input_shape"] == [1, 28, 28]
    shapes = [row["output_shape"] for row in card["layers"]]
    assert shapes == [channels_first(s) for s in engine.output_shapes] + [[10]]
    # spelled out for the shipped architecture, as the contract shows it
    by_name = dict(zip((row["name"] for row in card["layers"]), shapes, strict=True))
    assert by_name["conv1"] == [32, 28, 28]
    assert by_name["pool1"] == [32, 14, 14]
    assert by_name["pool2"] == [64, 7, 7]
    assert by_name["flatten"] == [3136]
    assert by_name["fc1"] == [128]
    assert by_name["fc2"] == [10]


def test_card_parameter_counts_add_up_to_the_engines(
    card: dict[str, Any], engine: Sequential
) -> None:
    per_layer = {row["name"]: row["parameters"] for row in card["layers"]}
    for layer in engine.layers:
        assert per_layer[layer.name] == sum(int(p.size) for p in layer.params.values())
    assert per_layer["softmax"] == 0
    assert card["total_parameters"] == sum(per_layer.values())
    assert card["total_parameters"] == engine.parameter_count() == CONTRACT_TOTAL_PARAMETERS


def test_card_geometry_of_conv_and_pool_layers(card: dict[str, Any], engine: Sequential) -> None:
    rows = {row["name"]: row for row in card["layers"]}
    for layer in engine.layers:
        row = rows[layer.name]
        geometry = (row["kernel_size"], row["stride"], row["padding"])
        if isinstance(layer, Conv2D):
            assert geometry == (layer.kernel_size, layer.stride, layer.padding) == (3, 1, "same")
        elif isinstance(layer, MaxPool2D):
            assert geometry == (2, 2, "valid")
        else:
            assert geometry == (None, None, None)
    assert (rows["softmax"]["kernel_size"], rows["softmax"]["padding"]) == (None, None)


def test_card_hash_is_the_sha256_of_the_weights_file(
    card: dict[str, Any], weights_path: Path
) -> None:
    assert card["weights_sha256"] == hashlib.sha256(weights_path.read_bytes()).hexdigest()


def test_card_metrics_are_the_files_metadata(
    card: dict[str, Any], saved_metadata: dict[str, Any]
) -> None:
    metrics = card["metrics"]
    for key in METRIC_KEYS:
        assert metrics[key] == saved_metadata[key], key
    assert "private_note" not in metrics  # only the documented metric keys leave the server


def test_shipped_card_reports_the_trained_models_metrics(
    trained_client: TestClient, shipped_weights: Path
) -> None:
    card = trained_client.get("/api/v1/model").json()
    assert card["weights_sha256"] == hashlib.sha256(shipped_weights.read_bytes()).hexdigest()
    metrics = card["metrics"]
    assert set(METRIC_KEYS) <= set(metrics)
    matrix = np.asarray(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.dtype.kind == "i"
    assert matrix.sum() == 10_000  # the MNIST test set, rows = true labels
    assert metrics["test_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-4)
    assert metrics["test_accuracy"] >= 0.99
    epoch_keys = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"}
    assert metrics["epochs"]
    assert all(epoch_keys <= set(row) for row in metrics["epochs"])


# --- layer weights -------------------------------------------------------------------------


def torch_layout(layer: Conv2D | Dense) -> np.ndarray:
    """The engine keeps (kh, kw, C, F) and (in, out); the API answers [F, C, kh, kw], [out, in]."""
    weight = layer.params["weight"]
    return weight.transpose(3, 2, 0, 1) if isinstance(layer, Conv2D) else weight.T


def test_conv1_weights_are_the_engine_kernels_as_out_in_kh_kw(
    client: TestClient, engine: Sequential
) -> None:
    body = client.get("/api/v1/model/layers/conv1/weights").json()
    assert (body["name"], body["kind"]) == ("conv1", "conv2d")
    weight = np.asarray(body["weight"], dtype=np.float32)
    kernels = engine.layer("conv1").params["weight"]  # (kh, kw, C, F)
    assert weight.shape == (32, 1, 3, 3)
    for f, c, i, j in [(0, 0, 0, 0), (5, 0, 2, 1), (31, 0, 1, 2)]:
        assert weight[f, c, i, j] == kernels[i, j, c, f]
    np.testing.assert_array_equal(weight, kernels.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(
        np.asarray(body["bias"], dtype=np.float32), engine.layer("conv1").params["bias"]
    )


@pytest.mark.parametrize("name", WEIGHTED)
def test_weights_of_every_weighted_layer_in_torch_layout(
    client: TestClient, engine: Sequential, name: str
) -> None:
    body = client.get(f"/api/v1/model/layers/{name}/weights").json()
    layer = engine.layer(name)
    assert isinstance(layer, Conv2D | Dense)
    assert body["kind"] == layer.kind
    np.testing.assert_array_equal(np.asarray(body["weight"], dtype=np.float32), torch_layout(layer))
    np.testing.assert_array_equal(np.asarray(body["bias"], dtype=np.float32), layer.params["bias"])


def test_dense_weights_are_out_by_in(client: TestClient) -> None:
    fc1 = client.get("/api/v1/model/layers/fc1/weights").json()
    fc2 = client.get("/api/v1/model/layers/fc2/weights").json()
    assert np.asarray(fc1["weight"]).shape == (128, 3136)
    assert np.asarray(fc2["weight"]).shape == (10, 128)
    assert np.asarray(fc2["bias"]).shape == (10,)


@pytest.mark.parametrize("name", WEIGHTED)
def test_base64_weights_are_the_same_float32_numbers(
    client: TestClient, kit: Any, name: str
) -> None:
    listed = client.get(f"/api/v1/model/layers/{name}/weights").json()
    packed = client.get(f"/api/v1/model/layers/{name}/weights", params={"encoding": "base64"})
    assert packed.status_code == 200
    body = packed.json()
    for part in ("weight", "bias"):
        assert body[part]["dtype"] == "float32"
        decoded = kit.decode(body[part])
        assert decoded.dtype == np.dtype("<f4")
        np.testing.assert_array_equal(decoded, np.asarray(listed[part], dtype=np.float32))


@pytest.mark.parametrize(("name", "kind"), WEIGHTLESS.items())
@pytest.mark.parametrize("encoding", ["list", "base64"])
def test_layers_without_weights_answer_null(
    client: TestClient, name: str, kind: str, encoding: str
) -> None:
    response = client.get(f"/api/v1/model/layers/{name}/weights", params={"encoding": encoding})
    assert response.status_code == 200
    assert response.json() == {"name": name, "kind": kind, "weight": None, "bias": None}


@pytest.mark.parametrize("name", ["conv9", "CONV1", "fc1 ", "layers"])
def test_unknown_layer_is_404_naming_it_and_the_known_ones(
    client: TestClient, kit: Any, name: str
) -> None:
    response = client.get(f"/api/v1/model/layers/{name}/weights")
    detail = kit.assert_error(response, 404, repr(name))
    assert "conv1" in detail
    assert "fc2" in detail


def test_unknown_weights_encoding_is_422(client: TestClient, kit: Any) -> None:
    response = client.get("/api/v1/model/layers/conv1/weights", params={"encoding": "hex"})
    kit.assert_error(response, 422, "encoding")
