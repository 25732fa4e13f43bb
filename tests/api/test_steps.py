"""POST /api/v1/predict with `steps: true`: the preprocessing stages, in order, each small
enough to draw, the last one the very input the network read, checked on drawings whose
geometry is known."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

PREDICT = "/api/v1/predict"
NAMES = ["decoded", "ink", "cleaned", "cropped", "scaled", "centred"]


def bar_image(width: int, height: int, *, ink: int, paper: int, side: int = 300) -> Image.Image:
    """A filled width x height bar (a '1') near the middle of a side x side canvas."""
    img = Image.new("L", (side, side), paper)
    left, top = (side - width) // 2 + 7, (side - height) // 2 - 5
    ImageDraw.Draw(img).rectangle((left, top, left + width - 1, top + height - 1), fill=ink)
    return img


def steps_of(client: TestClient, kit: Any, img: Image.Image, **options: Any) -> dict[str, Any]:
    response = client.post(PREDICT, json={"image": kit.png_b64(img), "steps": True, **options})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_six_steps_in_order_each_at_most_64_px_and_the_last_is_the_input(
    client: TestClient, kit: Any
) -> None:
    body = steps_of(client, kit, kit.draw_digit(3), encoding="base64")
    assert [step["name"] for step in body["steps"]] == NAMES
    images = [kit.decode(step["image"]) for step in body["steps"]]
    for step, image in zip(body["steps"], images, strict=True):
        assert step["note"].strip(), step["name"]
        assert image.ndim == 2, step["name"]
        assert max(image.shape) <= 64, (step["name"], image.shape)
        assert float(image.min()) >= 0.0
        assert float(image.max()) <= 1.0
    np.testing.assert_array_equal(images[-1], kit.decode(body["input"]))
    assert images[-2].max() == 1.0
    assert max(images[-2].shape) == 20


def test_the_ink_step_flips_dark_pen_on_paper_and_keeps_chalk_on_board(
    client: TestClient, kit: Any
) -> None:
    for ink, paper in ((0, 255), (255, 0)):
        body = steps_of(client, kit, bar_image(40, 120, ink=ink, paper=paper))
        decoded, inked = (np.asarray(body["steps"][i]["image"]) for i in (0, 1))
        centre = decoded.shape[0] // 2
        assert inked[centre, centre] > 0.9, (ink, paper)  # the bar is ink
        assert inked[1, 1] < 0.1, (ink, paper)  # the paper is not
        flipped = ink < paper
        np.testing.assert_allclose(inked, 1.0 - decoded if flipped else decoded, atol=1e-6)


def test_cropped_and_scaled_steps_have_the_geometry_of_the_drawn_bar(
    client: TestClient, kit: Any
) -> None:
    body = steps_of(client, kit, bar_image(12, 48, ink=0, paper=255), encoding="base64")
    by_name = {step["name"]: step for step in body["steps"]}
    cropped = kit.decode(by_name["cropped"]["image"])
    assert cropped.shape == (48, 12)  # exactly the bar: small enough to be sent unshrunk
    assert "12x48" in by_name["cropped"]["note"]
    assert kit.decode(by_name["scaled"]["image"]).shape == (20, 5)
    decoded = kit.decode(by_name["decoded"]["image"])
    assert decoded.shape == (64, 64)
    assert "300x300" in by_name["decoded"]["note"]


def test_a_large_step_is_shrunk_by_averaging(client: TestClient, kit: Any) -> None:
    img = kit.draw_digit(7, size=256)
    body = steps_of(client, kit, img, encoding="base64")
    decoded = kit.decode(body["steps"][0]["image"]).astype(np.float64)
    blocks = np.asarray(img, dtype=np.float64).reshape(64, 4, 64, 4).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(decoded, blocks, atol=2e-3)  # float16 on the wire


def test_pixels_skip_preprocessing_and_say_so(client: TestClient, digit_pixels: Any) -> None:
    response = client.post(PREDICT, json={"pixels": digit_pixels.tolist(), "steps": True})
    assert response.status_code == 200, response.text
    (step,) = response.json()["steps"]
    assert step["name"] == "pixels"
    assert "no preprocessing" in step["note"]
    np.testing.assert_allclose(np.asarray(step["image"]), digit_pixels, atol=1e-6)


def test_without_steps_there_are_none(client: TestClient, kit: Any) -> None:
    response = client.post(PREDICT, json={"image": kit.png_b64(kit.draw_digit(3))})
    assert "steps" not in response.json() or response.json()["steps"] is None


def test_steps_of_an_empty_image_is_the_usual_422(client: TestClient, kit: Any) -> None:
    blank = Image.new("L", (100, 100), 255)
    response = client.post(PREDICT, json={"image": kit.png_b64(blank), "steps": True})
    kit.assert_error(response, 422, "no digit")
