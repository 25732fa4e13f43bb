"""digit_score and is_digit through the API with the shipped model: nonsense is called nonsense,
digits are not, and the fields are in the OpenAPI schema."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from server.synth.nondigits import nondigits


def png(draw: Any, side: int = 280) -> bytes:
    img = Image.new("L", (side, side), 255)
    draw(ImageDraw.Draw(img))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


DRAWINGS = {
    # a click of the page's pen: preprocessing blows it up into a filled disc
    "dot": lambda d: d.ellipse((130, 130, 148, 148), fill=0),
    "circle with an X": lambda d: (
        d.ellipse((50, 50, 230, 230), outline=0, width=14),
        d.line((85, 85, 195, 195), fill=0, width=14),
        d.line((195, 85, 85, 195), fill=0, width=14),
    ),
    "zigzag": lambda d: d.line(
        [(30, 170), (80, 100), (130, 170), (180, 100), (230, 170)], fill=0, width=14
    ),
}


@pytest.mark.parametrize("name", list(DRAWINGS))
def test_nonsense_drawn_through_the_upload_path_is_not_a_digit(
    trained_client: TestClient, name: str
) -> None:
    response = trained_client.post(
        "/api/v1/predict/file", files={"file": ("x.png", png(DRAWINGS[name]), "image/png")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_digit"] is False, f"{name}: digit_score {body['digit_score']}"


def test_most_generated_nondigits_are_not_digits(trained_client: TestClient, kit: Any) -> None:
    drawn = nondigits(100, seed=11)
    images = [kit.b64(d.png) for d in drawn]
    body = trained_client.post("/api/v1/predict/batch", json={"images": images}).json()
    flagged = 1 - np.mean(body["is_digit"])
    assert flagged >= 0.8, f"only {flagged:.0%} of the non-digits called so"


def test_mnist_test_digits_are_digits(
    trained_client: TestClient, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    images, _ = mnist_test
    sample = images[np.random.default_rng(0).choice(len(images), 512, replace=False)]
    verdicts = []
    for start in range(0, 512, 256):
        pixels = (sample[start : start + 256] / 255.0).tolist()
        body = trained_client.post("/api/v1/predict/batch", json={"pixels": pixels}).json()
        verdicts += body["is_digit"]
    assert np.mean(verdicts) >= 0.97


def test_a_drawn_digit_is_a_digit(trained_client: TestClient, kit: Any) -> None:
    image = kit.png_b64(kit.draw_digit(3))
    body = trained_client.post("/api/v1/predict", json={"image": image}).json()
    assert body["is_digit"] is True
    assert isinstance(body["digit_score"], float)


def test_fields_are_in_the_openapi_schema(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    predict = schemas["PredictResponse"]
    assert predict["properties"]["digit_score"]["type"] == "number"
    assert predict["properties"]["is_digit"]["type"] == "boolean"
    assert {"digit_score", "is_digit"} <= set(predict["required"])
    batch = schemas["BatchResponse"]
    assert batch["properties"]["digit_scores"]["items"]["type"] == "number"
    assert batch["properties"]["is_digit"]["items"]["type"] == "boolean"
