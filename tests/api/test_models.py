"""Several models served at once: the folder's .npz files by name, `model` on every route that
uses one, 404 for a name nobody answers, bad files skipped at start-up.

Each answer is checked against the engine run directly on that model's own file.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.api.registry import ModelRegistry, UnknownModelError
from server.cnn import load_model, save_model, softmax
from server.cnn.architectures import mnist_cnn
from server.config import Settings
from server.inference import Predictor

NAMES = ["mnist_cnn", "narrow", "wide"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three models of different widths (so different answers), a corrupt file, and an .npz in a
    subfolder that is not a model."""
    folder = tmp_path_factory.mktemp("models")
    save_model(folder / "mnist_cnn.npz", mnist_cnn(seed=0), {"test_accuracy": 0.5})
    save_model(folder / "narrow.npz", mnist_cnn(seed=1, conv1=4, conv2=8, hidden=16), {})
    save_model(folder / "wide.npz", mnist_cnn(seed=2, conv1=16, conv2=16), {"test_accuracy": 0.25})
    (folder / "broken.npz").write_bytes(b"not a zip")
    (folder / "explain").mkdir()
    np.savez(folder / "explain" / "means.npz", means=np.zeros((10, 28, 28)))
    return folder


@pytest.fixture(scope="module")
def multi(models_dir: Path, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(weights=None, models_dir=models_dir, default_model="mnist_cnn")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def engine_probabilities(path: Path, pixels: np.ndarray) -> np.ndarray:
    """The engine alone, on the model's own file: (10,) probabilities."""
    model = load_model(path).model
    return softmax(model.forward(pixels[None, ..., None].astype(np.float32)))[0]


def test_models_lists_every_good_file_with_its_facts(multi: TestClient, models_dir: Path) -> None:
    rows = multi.get("/api/v1/models").json()
    assert [row["name"] for row in rows] == NAMES  # broken.npz and the subfolder are not models
    by_name = {row["name"]: row for row in rows}
    assert [row["name"] for row in rows if row["default"]] == ["mnist_cnn"]
    for name in NAMES:
        path = models_dir / f"{name}.npz"
        assert by_name[name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert by_name[name]["parameters"] == load_model(path).model.parameter_count()
        kinds = [layer["kind"] for layer in load_model(path).model.spec()["layers"]]
        assert by_name[name]["layers"] == [*kinds, "softmax"]
    assert by_name["wide"]["test_accuracy"] == 0.25
    assert by_name["narrow"]["test_accuracy"] is None


def test_bad_file_is_skipped_and_reported_by_name(
    models_dir: Path, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(weights=None, models_dir=models_dir)
    with caplog.at_level(logging.WARNING, "convscope"), TestClient(create_app(settings)) as c:
        problems = c.app.state.models.problems  # type: ignore[attr-defined]
    assert [p.path.name for p in problems] == ["broken.npz"]
    assert any("broken.npz" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("name", NAMES)
def test_predict_answers_with_the_named_model(
    multi: TestClient, models_dir: Path, name: str
) -> None:
    pixels = np.random.default_rng(3).random((28, 28)).astype(np.float32)
    body = multi.post("/api/v1/predict", json={"pixels": pixels.tolist(), "model": name}).json()
    expected = engine_probabilities(models_dir / f"{name}.npz", pixels)
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-4, atol=1e-6)
    sha = hashlib.sha256((models_dir / f"{name}.npz").read_bytes()).hexdigest()
    assert body["model"] == sha[:12]


def test_no_model_field_means_the_default(multi: TestClient, models_dir: Path) -> None:
    pixels = np.random.default_rng(4).random((28, 28)).astype(np.float32)
    body = multi.post("/api/v1/predict", json={"pixels": pixels.tolist()}).json()
    expected = engine_probabilities(models_dir / "mnist_cnn.npz", pixels)
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-4, atol=1e-6)


def test_batch_and_file_take_the_model(
    multi: TestClient, models_dir: Path, digit_png: bytes
) -> None:
    pixels = np.random.default_rng(5).random((2, 28, 28)).astype(np.float32)
    batch = multi.post(
        "/api/v1/predict/batch", json={"pixels": pixels.tolist(), "model": "narrow"}
    ).json()
    for item, probabilities in zip(pixels, batch["probabilities"], strict=True):
        expected = engine_probabilities(models_dir / "narrow.npz", item)
        np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    by_file = multi.post(
        "/api/v1/predict/file?model=wide", files={"file": ("d.png", digit_png, "image/png")}
    ).json()
    by_body = multi.post(
        "/api/v1/predict",
        json={"image": base64.b64encode(digit_png).decode(), "model": "wide"},
    ).json()
    assert by_file["probabilities"] == by_body["probabilities"]
    default = multi.post("/api/v1/predict/file", files={"file": ("d.png", digit_png)}).json()
    assert default["probabilities"] != by_file["probabilities"]


def test_model_card_and_weights_take_the_model(multi: TestClient, models_dir: Path) -> None:
    card = multi.get("/api/v1/model", params={"model": "narrow"}).json()
    assert card["name"] == "narrow"
    assert card["layers"][0]["output_shape"] == [4, 28, 28]
    assert multi.get("/api/v1/model").json()["name"] == "mnist_cnn"
    weights = multi.get("/api/v1/model/layers/conv1/weights", params={"model": "narrow"}).json()
    with np.load(models_dir / "narrow.npz") as archive:  # (kh, kw, C, F) on disk
        stored = archive["param/conv1.weight"].transpose(3, 2, 0, 1)
    np.testing.assert_array_equal(np.asarray(weights["weight"], dtype=np.float32), stored)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/v1/predict", {"json": {"pixels": [[0.0] * 28] * 28, "model": "nope"}}),
        ("POST", "/api/v1/predict/batch", {"json": {"pixels": [], "model": "nope"}}),
        ("POST", "/api/v1/predict/file?model=nope", {"files": {"file": ("a.png", b"x")}}),
        (
            "POST",
            "/api/v1/counterfactual",
            {"json": {"pixels": [[0.0] * 28] * 28, "target": 3, "model": "nope"}},
        ),
        ("GET", "/api/v1/model?model=nope", {}),
        ("GET", "/api/v1/model/layers/conv1/weights?model=nope", {}),
    ],
)
def test_unknown_model_is_404_listing_the_known_ones(
    multi: TestClient, method: str, path: str, kwargs: dict[str, object]
) -> None:
    response = multi.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 404
    # training jobs answer names of their own, which the message adds after the files
    expected = f"no model named 'nope'; models are {NAMES} and training:<id>"
    assert response.json()["detail"] == expected


def test_default_model_setting_picks_another_file(
    models_dir: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(weights=None, models_dir=models_dir, default_model="wide")
    with TestClient(create_app(settings)) as c:
        rows = c.get("/api/v1/models").json()
        assert [row["name"] for row in rows if row["default"]] == ["wide"]
        assert c.get("/api/v1/model").json()["layers"][0]["output_shape"] == [16, 28, 28]


def test_sources_answer_their_prefix(models_dir: Path) -> None:
    predictor = Predictor.from_file(models_dir / "narrow.npz")
    registry = ModelRegistry({"a": predictor}, default="a")

    def lookup(rest: str) -> Predictor:
        if rest != "42":
            raise KeyError(f"no training job {rest!r}")
        return predictor

    registry.add_source("training", lookup)
    assert registry.get("training:42") is predictor
    with pytest.raises(UnknownModelError, match="no training job '7'"):
        registry.get("training:7")
    with pytest.raises(UnknownModelError, match=r"models are \['a'\] and training:<id>"):
        registry.get("other:1")


SHIPPED_DIR = Path(__file__).resolve().parents[2] / "model_weights"
SHIPPED = sorted(path.stem for path in SHIPPED_DIR.glob("*.npz"))


@pytest.fixture(scope="module")
def shipped_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The server as shipped: every model of model_weights/, mnist_cnn the default."""
    settings = make_settings(weights=None, models_dir=SHIPPED_DIR, default_model="mnist_cnn")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_every_shipped_model_is_served(shipped_client: TestClient) -> None:
    rows = shipped_client.get("/api/v1/models").json()
    assert [row["name"] for row in rows] == SHIPPED
    assert {"mnist_cnn", "tiny", "mlp"} <= set(SHIPPED)
    for row in rows:
        assert row["test_accuracy"] is not None, row["name"]  # each file carries its metrics


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_answers_on_every_route(
    shipped_client: TestClient, name: str, digit_png: bytes
) -> None:
    path = SHIPPED_DIR / f"{name}.npz"
    pixels = np.random.default_rng(8).random((28, 28)).astype(np.float32)
    body = shipped_client.post(
        "/api/v1/predict", json={"pixels": pixels.tolist(), "model": name, "activations": True}
    ).json()
    np.testing.assert_allclose(
        body["probabilities"], engine_probabilities(path, pixels), rtol=1e-4, atol=1e-6
    )
    model = load_model(path).model
    assert [layer["name"] for layer in body["layers"]] == [
        *(layer.name for layer in model.layers),
        "softmax",
    ]
    assert isinstance(body["is_digit"], bool)
    batch = shipped_client.post(
        "/api/v1/predict/batch", json={"pixels": [pixels.tolist()], "model": name}
    ).json()
    assert batch["probabilities"][0] == pytest.approx(body["probabilities"], abs=1e-6)
    upload = shipped_client.post(
        f"/api/v1/predict/file?model={name}", files={"file": ("d.png", digit_png)}
    )
    assert upload.status_code == 200
    card = shipped_client.get("/api/v1/model", params={"model": name}).json()
    assert card["name"] == name
    assert card["total_parameters"] == model.parameter_count()
    first = next(layer for layer in model.layers if layer.params)
    weights = shipped_client.get(
        f"/api/v1/model/layers/{first.name}/weights", params={"model": name}
    )
    assert weights.status_code == 200
    assert (
        shipped_client.post(
            "/api/v1/counterfactual",
            json={
                "pixels": pixels.tolist(),
                "target": (body["label"] + 1) % 10,
                "model": name,
                "max_steps": 2,
            },
        ).status_code
        == 200
    )
