"""POST /api/v1/predict/batch: one forward pass, the same labels as one image at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

BATCH = "/api/v1/predict/batch"


@pytest.fixture(scope="module")
def grids(kit: Any) -> list[list[list[float]]]:
    """Twelve different 28x28 grids: drawn digits 0-9 and two noisy variants."""
    rng = np.random.default_rng(7)
    images = [kit.mnist_like_pixels(k) for k in range(10)]
    images += [np.clip(images[k] + rng.uniform(0, 0.3, (28, 28)), 0, 1) for k in (3, 8)]
    return [np.round(image, 4).tolist() for image in images]


def single(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_pixel_batch_equals_one_at_a_time(client: TestClient, grids: list[Any]) -> None:
    response = client.post(BATCH, json={"pixels": grids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"labels", "probabilities", "digit_scores", "is_digit"}
    singles = [single(client, pixels=grid) for grid in grids]
    assert body["labels"] == [s["label"] for s in singles]
    np.testing.assert_allclose(
        body["probabilities"], [s["probabilities"] for s in singles], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        body["digit_scores"], [s["digit_score"] for s in singles], rtol=1e-5, atol=1e-6
    )
    assert body["is_digit"] == [s["is_digit"] for s in singles]


def test_image_batch_equals_one_at_a_time(client: TestClient, kit: Any) -> None:
    images = [kit.png_b64(kit.draw_digit(k, size=120 + 20 * k)) for k in range(10)]
    images.append(kit.data_url(kit.image_bytes(kit.draw_digit(6), "JPEG"), "image/jpeg"))
    response = client.post(BATCH, json={"images": images})
    assert response.status_code == 200, response.text
    body = response.json()
    singles = [single(client, image=image) for image in images]
    assert body["labels"] == [s["label"] for s in singles]
    np.testing.assert_allclose(
        body["probabilities"], [s["probabilities"] for s in singles], rtol=1e-5, atol=1e-7
    )


def test_batch_probabilities_are_rows_summing_to_one(client: TestClient, grids: list[Any]) -> None:
    body = client.post(BATCH, json={"pixels": grids}).json()
    probabilities = np.asarray(body["probabilities"])
    assert probabilities.shape == (len(grids), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert body["labels"] == probabilities.argmax(axis=1).tolist()


def test_batch_of_256_is_accepted(client: TestClient, grids: list[Any]) -> None:
    batch = [grids[i % len(grids)] for i in range(256)]
    response = client.post(BATCH, json={"pixels": batch})
    assert response.status_code == 200, response.text
    labels = response.json()["labels"]
    assert len(labels) == 256
    assert labels[: len(grids)] == labels[len(grids) : 2 * len(grids)]


def test_batch_of_257_pixels_is_413(client: TestClient, grids: list[Any], kit: Any) -> None:
    batch = [grids[0]] * 257
    kit.assert_error(client.post(BATCH, json={"pixels": batch}), 413, "256", "257")


def test_batch_of_257_images_is_413(client: TestClient, kit: Any) -> None:
    image = kit.png_b64(kit.draw_digit(1, size=40))
    kit.assert_error(client.post(BATCH, json={"images": [image] * 257}), 413, "256", "257")


def test_empty_batch_answers_empty_lists(client: TestClient) -> None:
    response = client.post(BATCH, json={"images": []})
    assert response.status_code == 200
    assert response.json() == {
        "labels": [],
        "probabilities": [],
        "digit_scores": [],
        "is_digit": [],
    }


def test_batch_with_neither_images_nor_pixels_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post(BATCH, json={}), 422, "exactly one")


def test_batch_with_both_images_and_pixels_is_422(
    client: TestClient, grids: list[Any], kit: Any
) -> None:
    body = {"images": [kit.png_b64(kit.draw_digit(1))], "pixels": grids[:1]}
    kit.assert_error(client.post(BATCH, json=body), 422, "exactly one")


def test_bad_image_in_a_batch_names_its_index(client: TestClient, kit: Any) -> None:
    images = [kit.png_b64(kit.draw_digit(k)) for k in range(3)] + ["bm90IGFuIGltYWdl"]
    kit.assert_error(client.post(BATCH, json={"images": images}), 422, "images[3]")


def test_bad_base64_in_a_batch_names_its_index(client: TestClient, kit: Any) -> None:
    images = [kit.png_b64(kit.draw_digit(1)), "***"]
    kit.assert_error(client.post(BATCH, json={"images": images}), 422, "images[1]", "base64")


def test_tiff_in_a_batch_is_415_naming_its_index(client: TestClient, kit: Any) -> None:
    images = [kit.png_b64(kit.draw_digit(1)), kit.b64(kit.image_bytes(kit.draw_digit(2), "TIFF"))]
    kit.assert_error(client.post(BATCH, json={"images": images}), 415, "images[1]", "TIFF")


def test_blank_image_in_a_batch_is_422_no_digit(client: TestClient, kit: Any) -> None:
    images = [kit.png_b64(Image.new("L", (50, 50), 255))]
    body = client.post(BATCH, json={"images": images})
    kit.assert_error(body, 422, "images[0]", "no digit found in the image")


def test_wrong_grid_shape_in_a_batch_is_422(client: TestClient, grids: list[Any], kit: Any) -> None:
    kit.assert_error(client.post(BATCH, json={"pixels": [grids[0], grids[1][:27]]}), 422, "28")


def test_out_of_range_pixel_in_a_batch_is_422(
    client: TestClient, grids: list[Any], kit: Any
) -> None:
    bad = [row[:] for row in grids[0]]
    bad[2][3] = 1.5
    kit.assert_error(client.post(BATCH, json={"pixels": [bad]}), 422, "[0, 1]", "pixels[2][3]")


def test_unknown_field_in_a_batch_is_422(client: TestClient, grids: list[Any], kit: Any) -> None:
    body = {"pixels": grids[:1], "activations": True}
    kit.assert_error(client.post(BATCH, json=body), 422, "activations")
