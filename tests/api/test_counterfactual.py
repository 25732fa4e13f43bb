"""POST /api/v1/counterfactual: the edit against an independent float64 network and /predict,
its 4xx answers, and every answer against the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import Settings

COUNTERFACTUAL = "/api/v1/counterfactual"


@pytest.fixture(scope="module")
def validate(client: TestClient) -> Callable[[httpx.Response], None]:
    """validate(response): its body against the schema documented for its status."""
    openapi = client.get("/openapi.json").json()
    responses = openapi["paths"][COUNTERFACTUAL]["post"]["responses"]

    def check(response: httpx.Response) -> None:
        status = str(response.status_code)
        assert status in responses, f"POST {COUNTERFACTUAL} answered undocumented {status}"
        schema = responses[status]["content"]["application/json"]["schema"]
        document = {**schema, "components": openapi["components"]}
        errors = list(jsonschema.Draft202012Validator(document).iter_errors(response.json()))
        assert not errors, "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])

    return check


def label_of(client: TestClient, **body: Any) -> int:
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 200, response.text
    return int(response.json()["label"])


def other_digit(label: int) -> int:
    return (label + 5) % 10


# --- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["list", "base64"])
def test_an_answer_matches_the_schema_and_adds_up(
    client: TestClient,
    validate: Callable[[httpx.Response], None],
    digit_pixels: np.ndarray,
    kit: Any,
    encoding: str,
) -> None:
    target = other_digit(label_of(client, pixels=digit_pixels.tolist()))
    response = client.post(
        COUNTERFACTUAL,
        json={
            "pixels": digit_pixels.tolist(),
            "target": target,
            "max_steps": 3,
            "encoding": encoding,
        },
    )
    assert response.status_code == 200, response.text
    validate(response)
    body = response.json()
    assert body["target"] == target
    assert 0 <= body["steps"] <= 3
    pixels, delta = kit.decode(body["pixels"]), kit.decode(body["delta"])
    assert pixels.shape == delta.shape == (28, 28)
    tolerance = 1e-6 if encoding == "list" else 2e-3  # float16 on the wire when packed
    np.testing.assert_allclose(pixels - delta, digit_pixels, atol=2 * tolerance)
    assert body["l1"] == pytest.approx(np.abs(delta).sum(), rel=1e-3, abs=0.05)
    assert body["l2"] == pytest.approx(np.sqrt((delta**2).sum()), rel=1e-3, abs=0.05)
    assert body["label"] == int(np.argmax(body["probabilities"]))
    assert body["reached"] == (body["probabilities"][target] > 0.5)
    assert set(body["timings_ms"]) == {"decode", "preprocess", "search", "total"}


def test_an_image_is_preprocessed_as_predict_does_it(
    client: TestClient, validate: Callable[[httpx.Response], None], digit_png: bytes, kit: Any
) -> None:
    image = kit.b64(digit_png)
    predicted = client.post("/api/v1/predict", json={"image": image}).json()
    target = other_digit(predicted["label"])
    response = client.post(COUNTERFACTUAL, json={"image": image, "target": target, "max_steps": 2})
    assert response.status_code == 200, response.text
    validate(response)
    body = response.json()
    assert body["original"]["label"] == predicted["label"]
    np.testing.assert_allclose(
        body["original"]["probabilities"], predicted["probabilities"], atol=1e-6
    )
    edited, delta = kit.decode(body["pixels"]), kit.decode(body["delta"])
    np.testing.assert_allclose(edited - delta, kit.decode(predicted["input"]), atol=1e-6)


def test_the_trained_model_reads_the_edit_as_the_target(
    trained_client: TestClient, shipped_weights: Path, reference: Any, digit_pixels: np.ndarray
) -> None:
    """The drawn 3 made an 8; an independent float64 network agrees on both readings."""
    oracle = type(reference)(shipped_weights)  # the conftest's float64 network, on these weights
    response = trained_client.post(
        COUNTERFACTUAL, json={"pixels": digit_pixels.tolist(), "target": 8}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reached"]
    assert body["label"] == 8
    assert body["steps"] >= 1
    edited = np.asarray(body["pixels"])
    np.testing.assert_allclose(
        body["probabilities"], oracle.probabilities(edited), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        body["original"]["probabilities"], oracle.probabilities(digit_pixels), rtol=1e-4, atol=1e-6
    )
    assert body["original"]["label"] == 3
    assert 0 < body["l1"] <= 150


# --- errors ------------------------------------------------------------------------------------


def test_the_current_label_as_target_is_a_422_that_says_so(
    client: TestClient,
    validate: Callable[[httpx.Response], None],
    digit_pixels: np.ndarray,
    kit: Any,
) -> None:
    label = label_of(client, pixels=digit_pixels.tolist())
    response = client.post(COUNTERFACTUAL, json={"pixels": digit_pixels.tolist(), "target": label})
    kit.assert_error(response, 422, "already", f"target {label}")
    validate(response)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"target": 10}, ["target"]),
        ({"target": -1}, ["target"]),
        ({"target": None}, ["target"]),
        ({"max_steps": 0}, ["max_steps"]),
        ({"max_steps": 1001}, ["max_steps", "1000"]),
        ({"encoding": "hex"}, ["encoding"]),
        ({"image": "aGVsbG8="}, ["exactly one"]),
        ({"pixels": [[2.0] * 28] * 28}, ["pixels[0][0]", "[0, 1]"]),
        ({"colour": "red"}, ["colour"]),
    ],
    ids=[
        "target-10",
        "target-negative",
        "target-missing",
        "steps-0",
        "steps-1001",
        "encoding",
        "both-inputs",
        "pixels-out-of-range",
        "unknown-field",
    ],
)
def test_bad_requests_are_422s_that_name_the_problem(
    client: TestClient,
    validate: Callable[[httpx.Response], None],
    digit_pixels: np.ndarray,
    kit: Any,
    change: dict[str, Any],
    words: list[str],
) -> None:
    body = {"pixels": digit_pixels.tolist(), "target": 1, **change}
    body = {key: value for key, value in body.items() if value is not None}
    response = client.post(COUNTERFACTUAL, json=body)
    kit.assert_error(response, 422, *words)
    validate(response)


def test_an_image_without_a_digit_is_a_422(
    client: TestClient, validate: Callable[[httpx.Response], None], kit: Any
) -> None:
    from PIL import Image

    blank = kit.png_b64(Image.new("L", (64, 64), 255))
    response = client.post(COUNTERFACTUAL, json={"image": blank, "target": 3})
    kit.assert_error(response, 422, "digit")
    validate(response)


def test_the_time_limit_setting_bounds_the_search(
    make_settings: Callable[..., Settings], digit_pixels: np.ndarray
) -> None:
    with TestClient(create_app(make_settings(counterfactual_seconds=1e-9))) as hurried:
        label = label_of(hurried, pixels=digit_pixels.tolist())
        response = hurried.post(
            COUNTERFACTUAL,
            json={"pixels": digit_pixels.tolist(), "target": other_digit(label), "max_steps": 1000},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["steps"] == 0
    assert not body["reached"]
    assert body["l1"] == 0


@pytest.fixture(scope="module")
def client_without_means(
    make_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    missing = tmp_path_factory.mktemp("means") / "missing.npz"
    with TestClient(create_app(make_settings(class_means=missing))) as test_client:
        yield test_client


def test_a_missing_class_means_file_is_a_503_naming_it(
    client_without_means: TestClient,
    validate: Callable[[httpx.Response], None],
    digit_pixels: np.ndarray,
) -> None:
    response = client_without_means.post(
        COUNTERFACTUAL, json={"pixels": digit_pixels.tolist(), "target": 1}
    )
    # a file the server lacks, not a bad request: 503, with a detail that says what to do
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "missing.npz is missing" in detail
    assert "scripts/class_means.py" in detail
    validate(response)
    assert client_without_means.get("/healthz").status_code == 200  # the rest still serves
