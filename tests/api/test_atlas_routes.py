"""The atlas routes and predict's neighbours (docs/api-contract.md, "The atlas") against the
atlas files read apart from the app, the engine, and the app's own OpenAPI schema: every answer
and every refusal.

The app serves copies of the shipped mnist_cnn and tiny with their atlases, and `bare`, a model
without one. Predictions run on compute threads here, so the app's NeighborIndex is at hand;
one test checks that the compute process answers the same.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.atlas.store import Atlas, atlas_path, load_atlas
from server.cnn import Sequential, load_model
from server.config import Settings
from server.inference import Predictor

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("mnist_cnn", "tiny")
BASE = "/api/v1/model"
PREDICT = "/api/v1/predict"
CELL_DIGITS = 60  # the contract: up to 60 digits of a cell
FLOAT16 = 1e-3  # absolute, on values in [0, 1] sent as float16
Validate = Callable[[str, str, Any], None]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, weights_path: Path) -> Path:
    """Copies of the shipped mnist_cnn and tiny with their atlases, and an untrained model
    without one."""
    folder = tmp_path_factory.mktemp("atlas-models")
    (folder / "atlas").mkdir()
    for name in SHIPPED:
        shutil.copy(ROOT / "model_weights" / f"{name}.npz", folder / f"{name}.npz")
        shutil.copy(atlas_path(ROOT / "model_weights" / f"{name}.npz"), folder / "atlas")
    shutil.copy(weights_path, folder / "bare.npz")
    return folder


def serving(models_dir: Path, make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    return make_settings(
        weights=None, models_dir=models_dir, default_model="mnist_cnn", **overrides
    )


@pytest.fixture(scope="module")
def client(models_dir: Path, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = serving(models_dir, make_settings, compute_process=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def atlases(models_dir: Path) -> dict[str, Atlas]:
    """The atlas files, read by the store alone."""
    return {name: load_atlas(atlas_path(models_dir / f"{name}.npz")) for name in SHIPPED}


@pytest.fixture(scope="module")
def models(models_dir: Path) -> dict[str, Sequential]:
    return {name: load_model(models_dir / f"{name}.npz").model for name in (*SHIPPED, "bare")}


@pytest.fixture(scope="module")
def validate(client: TestClient) -> Validate:
    """validate(template, method, response): the body against the schema documented for its
    status in the app's /openapi.json."""
    openapi = client.get("/openapi.json").json()

    def check(template: str, method: str, response: Any) -> None:
        responses = openapi["paths"][template][method]["responses"]
        status = str(response.status_code)
        assert status in responses, f"{method.upper()} {template} answered undocumented {status}"
        schema = responses[status]["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator({**schema, "components": openapi["components"]})
        errors = list(validator.iter_errors(response.json()))
        assert not errors, f"{template} {status}: {[e.message[:200] for e in errors[:3]]}"

    return check


def assert_no_atlas(response: Any, name: str) -> None:
    """503 with a detail in words: which model, and how to give it an atlas."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    for words in (f"model {name!r}", "no atlas", "convscope atlas"):
        assert words in detail, f"{words!r} not in {detail!r}"


def thumbnail(atlas: Atlas, index: int) -> np.ndarray:
    """A held digit's pixels in [0, 1], from the atlas file."""
    position = atlas.position(index)
    assert position is not None, f"digit {index} is not held"
    return atlas.pixels[position].astype(np.float64) / 255.0


# --- GET /api/v1/model/layers/{layer}/channels/{c} -----------------------------------------

CHANNELS = "/api/v1/model/layers/{layer}/channels/{c}"
MEMBERS = {
    "mnist_cnn": {"conv1": "conv1", "relu1": "conv1", "pool1": "conv1", "pool2": "conv2"},
    "tiny": {"conv1": "bn1", "bn1": "bn1", "relu1": "bn1", "bn3": "bn3", "conv3": "bn3"},
}


@pytest.mark.parametrize(
    ("model", "layer"), [(m, layer) for m, layers in MEMBERS.items() for layer in layers]
)
def test_channel_answers_its_examples_and_ideal_input(
    client: TestClient, atlases: dict[str, Atlas], validate: Validate, model: str, layer: str
) -> None:
    atlas = atlases[model]
    channel = next(ch for ch in atlas.channels.values() if layer in ch.members)
    last = len(channel.index) - 1
    for c in sorted({0, last // 2, last}):
        response = client.get(f"{BASE}/layers/{layer}/channels/{c}", params={"model": model})
        assert response.status_code == 200, response.text
        validate(CHANNELS, "get", response)
        body = response.json()
        assert (body["layer"], body["map"], body["channel"]) == (layer, MEMBERS[model][layer], c)
        assert len(body["examples"]) == 9
        for k, example in enumerate(body["examples"]):
            index = int(channel.index[c, k])
            row, col = int(channel.row[c, k]), int(channel.col[c, k])
            assert example["index"] == index
            assert (example["row"], example["col"]) == (row, col)
            assert example["value"] == pytest.approx(float(channel.value[c, k]), rel=1e-6)
            position = atlas.position(index)
            assert position is not None
            assert example["label"] == int(atlas.labels[position])
            assert example["predicted"] == int(atlas.probabilities[position].argmax())
            top, left, bottom, right = example["box"]
            assert example["box"] == list(channel.field.box(row, col))
            patch = np.asarray(example["patch"])
            np.testing.assert_allclose(patch, thumbnail(atlas, index)[top:bottom, left:right])
        values = [example["value"] for example in body["examples"]]
        assert values == sorted(values, reverse=True), "highest first"
        np.testing.assert_array_equal(np.float32(body["ideal"]), channel.ideal[c])
        assert body["ideal_box"] == list(channel.ideal_box)
        assert body["ideal_value"] == pytest.approx(float(channel.ideal_value[c]), rel=1e-6)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/layers/nope/channels/0", ["nope"]),
        ("/layers/conv1/channels/32", ["32", "0 to 31"]),
        ("/layers/pool2/channels/64", ["64", "0 to 63"]),
        ("/layers/relu1/channels/-1", ["-1"]),
        ("/layers/conv1/channels/0?model=nope", ["nope"]),
        ("/layers/bn3/channels/24?model=tiny", ["24", "0 to 23"]),
        ("/layers/bn1/channels/0", ["bn1"]),  # mnist_cnn has no bn1
    ],
)
def test_channel_404s_an_unknown_model_layer_or_channel(
    client: TestClient, kit: Any, validate: Validate, path: str, words: list[str]
) -> None:
    response = client.get(BASE + path)
    kit.assert_error(response, 404, *words)
    validate(CHANNELS, "get", response)


@pytest.mark.parametrize(
    ("layer", "model"),
    [("fc1", "mnist_cnn"), ("flatten", "mnist_cnn"), ("dropout", "mnist_cnn"),
     ("softmax", "mnist_cnn"), ("fc", "tiny"), ("flatten", "tiny")],
)  # fmt: skip
def test_channel_422s_a_layer_that_is_not_convolutional(
    client: TestClient, kit: Any, validate: Validate, layer: str, model: str
) -> None:
    response = client.get(f"{BASE}/layers/{layer}/channels/0", params={"model": model})
    kit.assert_error(response, 422, layer, "conv1")  # it names the layers that would do
    validate(CHANNELS, "get", response)


def test_channel_422s_a_channel_that_is_not_a_number(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.get(f"{BASE}/layers/conv1/channels/one"), 422, "c")


# --- models without an atlas ---------------------------------------------------------------

WITHOUT_ATLAS = [
    (CHANNELS, "/layers/conv1/channels/0"),
    ("/api/v1/model/classes", "/classes"),
    ("/api/v1/model/embedding", "/embedding"),
    ("/api/v1/model/digits/{index}", "/digits/0"),
    ("/api/v1/model/confusion/{true}/{predicted}", "/confusion/4/9"),
]


@pytest.mark.parametrize(("template", "path"), WITHOUT_ATLAS)
def test_a_model_without_an_atlas_gets_503_in_words(
    client: TestClient, validate: Validate, template: str, path: str
) -> None:
    response = client.get(BASE + path, params={"model": "bare"})
    assert_no_atlas(response, "bare")
    validate(template, "get", response)


def test_the_model_card_says_which_models_have_an_atlas(client: TestClient) -> None:
    for name, has in {"mnist_cnn": True, "tiny": True, "bare": False}.items():
        assert client.get(BASE, params={"model": name}).json()["atlas"] is has
    assert client.get(BASE).json()["atlas"] is True  # the default, mnist_cnn


def test_a_stale_atlas_is_not_served(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """tiny's atlas beside mnist_cnn's weights (named tiny): other weights, so none."""
    shutil.copy(ROOT / "model_weights" / "mnist_cnn.npz", tmp_path / "tiny.npz")
    (tmp_path / "atlas").mkdir()
    shutil.copy(atlas_path(ROOT / "model_weights" / "tiny.npz"), tmp_path / "atlas")
    settings = make_settings(
        weights=None, models_dir=tmp_path, default_model="tiny", compute_process=False
    )
    with TestClient(create_app(settings)) as stale:
        assert stale.get(BASE).json()["atlas"] is False
        assert_no_atlas(stale.get(f"{BASE}/classes"), "tiny")


# --- classes, embedding, digits ------------------------------------------------------------


@pytest.mark.parametrize("model", SHIPPED)
def test_classes_are_the_atlas_class_inputs(
    client: TestClient, atlases: dict[str, Atlas], validate: Validate, model: str
) -> None:
    response = client.get(f"{BASE}/classes", params={"model": model})
    validate("/api/v1/model/classes", "get", response)
    classes = response.json()["classes"]
    atlas = atlases[model]
    assert [c["label"] for c in classes] == list(range(10))
    for label, entry in enumerate(classes):
        np.testing.assert_array_equal(np.float32(entry["image"]), atlas.class_images[label])
        assert entry["probability"] == pytest.approx(float(atlas.class_probabilities[label]))


@pytest.mark.parametrize("model", SHIPPED)
def test_embedding_lists_every_held_digit_on_the_map(
    client: TestClient, atlases: dict[str, Atlas], validate: Validate, model: str
) -> None:
    response = client.get(f"{BASE}/embedding", params={"model": model})
    validate("/api/v1/model/embedding", "get", response)
    body = response.json()
    atlas = atlases[model]
    assert (body["layer"], body["method"]) == (atlas.layer, atlas.method)
    points = body["points"]
    assert body["count"] == len(points) == len(atlas.index)
    assert [p["index"] for p in points] == atlas.index.tolist()
    assert [p["label"] for p in points] == atlas.labels.tolist()
    assert [p["predicted"] for p in points] == atlas.probabilities.argmax(axis=1).tolist()
    xy = np.array([[p["x"], p["y"]] for p in points])
    np.testing.assert_allclose(xy, atlas.xy, atol=5e-5)  # sent to 4 decimals
    assert np.abs(xy).max() <= 1.0


@pytest.mark.parametrize("model", SHIPPED)
def test_digit_answers_a_held_digit_and_404s_another(
    client: TestClient, atlases: dict[str, Atlas], validate: Validate, kit: Any, model: str
) -> None:
    atlas = atlases[model]
    template = "/api/v1/model/digits/{index}"
    for position in (0, len(atlas.index) // 2, len(atlas.index) - 1):
        index = int(atlas.index[position])
        response = client.get(f"{BASE}/digits/{index}", params={"model": model})
        validate(template, "get", response)
        body = response.json()
        assert (body["index"], body["label"]) == (index, int(atlas.labels[position]))
        np.testing.assert_allclose(body["probabilities"], atlas.probabilities[position])
        assert body["predicted"] == int(np.argmax(body["probabilities"]))
        np.testing.assert_allclose(np.asarray(body["thumbnail"]), thumbnail(atlas, index))
    not_held = int(np.setdiff1d(np.arange(10000), atlas.index)[0])
    for index in (not_held, 10000, -1):
        response = client.get(f"{BASE}/digits/{index}", params={"model": model})
        kit.assert_error(response, 404, str(index), "does not hold")
        validate(template, "get", response)


# --- GET /api/v1/model/confusion/{true}/{predicted} ----------------------------------------


@pytest.mark.parametrize("model", SHIPPED)
def test_confusion_cells_match_the_matrix_most_confident_first(
    client: TestClient, atlases: dict[str, Atlas], validate: Validate, model: str
) -> None:
    """Every cell: the model card's count; the held digits of that cell, at most 60, none left
    out more confident than one sent."""
    matrix = client.get(BASE, params={"model": model}).json()["metrics"]["confusion_matrix"]
    atlas = atlases[model]
    predicted = atlas.probabilities.argmax(axis=1)
    for true in range(10):
        for guess in range(10):
            response = client.get(f"{BASE}/confusion/{true}/{guess}", params={"model": model})
            assert response.status_code == 200, response.text
            if true == guess or (true, guess) == (4, 9):
                validate("/api/v1/model/confusion/{true}/{predicted}", "get", response)
            body = response.json()
            cell = f"{model} cell ({true}, {guess})"
            assert (body["true"], body["predicted"]) == (true, guess)
            assert body["count"] == matrix[true][guess], cell
            held = np.flatnonzero((atlas.labels == true) & (predicted == guess))
            digits = body["digits"]
            assert len(digits) == min(len(held), CELL_DIGITS), cell
            assert {d["index"] for d in digits} <= set(atlas.index[held].tolist()), cell
            assert all((d["label"], d["predicted"]) == (true, guess) for d in digits), cell
            confidence = [d["probabilities"][guess] for d in digits]
            assert confidence == sorted(confidence, reverse=True), f"{cell}: not most first"
            left_out = np.setdiff1d(atlas.index[held], [d["index"] for d in digits])
            if len(left_out):
                most = max(atlas.probabilities[atlas.position(int(i)), guess] for i in left_out)
                assert most <= min(confidence), f"{cell}: a more confident digit left out"
    assert sum(map(sum, matrix)) == 10000


@pytest.mark.parametrize("path", ["/confusion/10/0", "/confusion/0/10", "/confusion/-1/3"])
def test_confusion_422s_a_digit_outside_0_to_9(
    client: TestClient, kit: Any, validate: Validate, path: str
) -> None:
    response = client.get(BASE + path)
    kit.assert_error(response, 422)
    validate("/api/v1/model/confusion/{true}/{predicted}", "get", response)


def test_an_unknown_model_gets_404_on_every_atlas_route(client: TestClient, kit: Any) -> None:
    for _, path in WITHOUT_ATLAS:
        kit.assert_error(client.get(BASE + path, params={"model": "nope"}), 404, "nope")


# --- encodings -----------------------------------------------------------------------------


def arrays_of(body: Any, decode: Callable[[Any], np.ndarray]) -> list[np.ndarray]:
    """Every array in an answer, in order: what is a list under `list` is an object else."""
    if isinstance(body, dict) and "data" in body and "shape" in body:
        return [decode(body)]
    if isinstance(body, dict):
        return [a for key in sorted(body) for a in arrays_of(body[key], decode)]
    if isinstance(body, list) and body and isinstance(body[0], list):
        return [decode(body)]
    if isinstance(body, list):
        return [a for item in body for a in arrays_of(item, decode)]
    return []


@pytest.mark.parametrize(
    "path",
    ["/layers/conv2/channels/5", "/classes", "/digits/{held}", "/confusion/4/9"],
)
def test_every_encoding_sends_the_same_arrays(
    client: TestClient, atlases: dict[str, Atlas], kit: Any, path: str
) -> None:
    path = path.format(held=int(atlases["mnist_cnn"].index[7]))
    answers = {
        encoding: client.get(BASE + path, params={"encoding": encoding}).json()
        for encoding in ("list", "base64", "uint8")
    }
    listed = arrays_of(answers["list"], kit.decode)
    packed = arrays_of(answers["base64"], kit.decode)
    quantized = arrays_of(answers["uint8"], lambda value: kit.dequantize(value)[1])
    assert len(listed) == len(packed) == len(quantized) > 0
    for plain, half, levels, raw in zip(
        listed, packed, quantized, arrays_of(answers["uint8"], lambda v: v), strict=True
    ):
        assert plain.shape == half.shape == levels.shape
        assert half.dtype == np.float16
        np.testing.assert_allclose(half, plain, atol=FLOAT16)
        np.testing.assert_allclose(levels, plain, atol=raw["scale"] / 2 + 1e-7)


# --- predict with neighbours ---------------------------------------------------------------


def vector_of(model: Sequential, pixels: np.ndarray, layer: str) -> np.ndarray:
    _, kept = model.forward_keeping(pixels[None, :, :, None].astype(np.float32), {layer})
    return kept[layer].reshape(-1)


@pytest.mark.parametrize("model", SHIPPED)
def test_predict_neighbors_are_the_indexs_nearest_digits(
    client: TestClient,
    atlases: dict[str, Atlas],
    models: dict[str, Sequential],
    validate: Validate,
    kit: Any,
    model: str,
) -> None:
    atlas = atlases[model]
    predictor: Predictor = client.app.state.models.get(model)  # type: ignore[attr-defined]
    index = predictor.neighbor_index
    held = int(atlas.index[11])
    drawings = {"a drawn 4": kit.mnist_like_pixels(4), "held digit": thumbnail(atlas, held)}
    for what, pixels in drawings.items():
        request = {"pixels": pixels.tolist(), "neighbors": True, "model": model}
        response = client.post(PREDICT, json=request)
        assert response.status_code == 200, response.text
        validate(PREDICT, "post", response)
        body = response.json()
        vector = vector_of(models[model], pixels, atlas.layer)
        expected = index.nearest(vector)
        neighbors = body["neighbors"]
        assert len(neighbors) == 8, what
        assert [n["index"] for n in neighbors] == atlas.index[expected.positions].tolist()
        distances = np.sqrt(((index.features.astype(np.float64) - vector) ** 2).sum(axis=1))
        sent = np.array([n["distance"] for n in neighbors])
        assert (np.diff(sent) >= 0).all(), f"{what}: not nearest first"
        np.testing.assert_allclose(sent, np.sort(distances)[:8], atol=1e-2, err_msg=what)
        for neighbor, position in zip(neighbors, expected.positions, strict=True):
            assert neighbor["label"] == int(atlas.labels[position])
            assert neighbor["predicted"] == int(atlas.probabilities[position].argmax())
            np.testing.assert_allclose(
                np.asarray(neighbor["thumbnail"]), thumbnail(atlas, neighbor["index"])
            )
        weights = 1.0 / (sent + 1e-6)
        place = (weights[:, None] * atlas.xy[expected.positions]).sum(axis=0) / weights.sum()
        embedding = body["embedding"]
        assert embedding["layer"] == atlas.layer
        assert (embedding["x"], embedding["y"]) == pytest.approx(tuple(place), abs=1e-4)
        assert -1 <= embedding["x"] <= 1
        assert -1 <= embedding["y"] <= 1
    # a held digit sent as it is finds itself, and lands on its own place
    assert neighbors[0]["index"] == held
    position = atlas.position(held)
    assert (embedding["x"], embedding["y"]) == pytest.approx(tuple(atlas.xy[position]), abs=0.02)


def test_predict_without_neighbors_adds_nothing(client: TestClient, kit: Any) -> None:
    body = client.post(PREDICT, json={"pixels": kit.mnist_like_pixels(2).tolist()}).json()
    assert set(body) == kit.PLAIN_ANSWER


def test_predict_file_takes_neighbors_as_a_query_parameter(
    client: TestClient, digit_png: bytes
) -> None:
    files = {"file": ("seven.png", digit_png, "image/png")}
    plain = client.post(f"{PREDICT}/file", files=files, params={"model": "tiny"}).json()
    near = client.post(
        f"{PREDICT}/file", files=files, params={"model": "tiny", "neighbors": "true"}
    ).json()
    assert len(near["neighbors"]) == 8
    assert set(near) == set(plain) | {"neighbors", "embedding"}
    assert near["label"] == plain["label"]


def test_predict_neighbors_on_a_model_without_an_atlas_gets_503(
    client: TestClient, kit: Any, validate: Validate, digit_png: bytes
) -> None:
    pixels = kit.mnist_like_pixels(5).tolist()
    response = client.post(PREDICT, json={"pixels": pixels, "neighbors": True, "model": "bare"})
    assert_no_atlas(response, "bare")
    validate(PREDICT, "post", response)
    files = {"file": ("seven.png", digit_png, "image/png")}
    response = client.post(
        f"{PREDICT}/file", files=files, params={"model": "bare", "neighbors": "true"}
    )
    assert_no_atlas(response, "bare")
    plain = client.post(PREDICT, json={"pixels": pixels, "model": "bare"})
    assert plain.status_code == 200  # without neighbours, a model without an atlas answers


def test_the_compute_process_answers_the_same_neighbours(
    tmp_path: Path, make_settings: Callable[..., Settings], client: TestClient, kit: Any
) -> None:
    """tiny alone, so that the child computes no other model's neighbour vectors."""
    shutil.copy(ROOT / "model_weights" / "tiny.npz", tmp_path / "tiny.npz")
    (tmp_path / "atlas").mkdir()
    shutil.copy(atlas_path(ROOT / "model_weights" / "tiny.npz"), tmp_path / "atlas")
    settings = make_settings(
        weights=None, models_dir=tmp_path, default_model="tiny", compute_process=True
    )
    request = {"pixels": kit.mnist_like_pixels(8).tolist(), "neighbors": True, "model": "tiny"}
    with TestClient(create_app(settings)) as separate:
        assert separate.app.state.compute.process is not None  # type: ignore[attr-defined]
        answered = separate.post(PREDICT, json=request).json()
    threads = client.post(PREDICT, json=request).json()
    assert len(answered["neighbors"]) == 8
    assert kit.without_timings(answered) == kit.without_timings(threads)
