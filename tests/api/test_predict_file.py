"""POST /api/v1/predict/file: a multipart upload, options as query parameters; same answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

FILE = "/api/v1/predict/file"
BOUNDARY = "------------------------d74496d66958873e"  # what curl generates, give or take


def curl_form(data: bytes, filename: str = "digit.png", mime: str = "image/png") -> bytes:
    """The body `curl -F file=@digit.png` sends, byte for byte."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {mime}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(client: TestClient, data: bytes, query: str = "", **kwargs: Any) -> Any:
    return client.post(f"{FILE}{query}", files={"file": ("digit.png", data, "image/png")}, **kwargs)


def test_upload_gives_the_same_answer_as_the_json_route(
    client: TestClient, digit_png: bytes, kit: Any
) -> None:
    by_file = upload(client, digit_png)
    by_json = client.post("/api/v1/predict", json={"image": kit.b64(digit_png)})
    assert by_file.status_code == by_json.status_code == 200
    assert kit.without_timings(by_file.json()) == kit.without_timings(by_json.json())


def test_curl_style_form_with_content_length(
    client: TestClient, digit_png: bytes, kit: Any
) -> None:
    body = curl_form(digit_png)
    response = client.post(
        FILE,
        content=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(body)),
        },
    )
    assert response.status_code == 200, response.text
    by_json = client.post("/api/v1/predict", json={"image": kit.b64(digit_png)}).json()
    assert kit.without_timings(response.json()) == kit.without_timings(by_json)


def test_query_options_are_applied(client: TestClient, digit_png: bytes, kit: Any) -> None:
    query = "?activations=true&saliency=true&target=3&encoding=base64"
    by_file = upload(client, digit_png, query)
    assert by_file.status_code == 200, by_file.text
    body = by_file.json()
    assert body["target"] == 3
    assert body["input"]["dtype"] == "float16"
    assert body["saliency"]["shape"] == [28, 28]
    assert [layer["name"] for layer in body["layers"]][-1] == "softmax"
    by_json = client.post(
        "/api/v1/predict",
        json={
            "image": kit.b64(digit_png),
            "activations": True,
            "saliency": True,
            "target": 3,
            "encoding": "base64",
        },
    ).json()
    assert kit.without_timings(body) == kit.without_timings(by_json)


def test_default_options_answer_only_label_probabilities_input(
    client: TestClient, digit_png: bytes, kit: Any
) -> None:
    body = upload(client, digit_png).json()
    assert set(body) == kit.PLAIN_ANSWER
    assert np.asarray(body["input"]).shape == (28, 28)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_accepted_format_uploads(client: TestClient, kit: Any, fmt: str) -> None:
    data = kit.image_bytes(kit.draw_digit(5), fmt)
    by_file = upload(client, data)
    by_json = client.post("/api/v1/predict", json={"image": kit.b64(data)})
    assert by_file.status_code == 200, by_file.text
    assert kit.without_timings(by_file.json()) == kit.without_timings(by_json.json())


def test_missing_file_field_is_422(client: TestClient, kit: Any) -> None:
    response = client.post(FILE, files={"upload": ("digit.png", b"x", "image/png")})
    kit.assert_error(response, 422, "file")


def test_no_body_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post(FILE), 422, "file")


def test_empty_file_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(upload(client, b""), 422, "empty")


def test_file_that_is_no_image_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(upload(client, b"hello, world"), 422, "PNG, JPEG, WebP, BMP or GIF")


def test_tiff_upload_is_415(client: TestClient, kit: Any) -> None:
    kit.assert_error(upload(client, kit.image_bytes(kit.draw_digit(1), "TIFF")), 415, "TIFF")


def test_blank_upload_is_422_no_digit(client: TestClient, kit: Any) -> None:
    blank = kit.image_bytes(Image.new("L", (100, 100), 255))
    kit.assert_error(upload(client, blank), 422, "no digit found in the image")


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("?encoding=xml", "encoding"),
        ("?target=10", "target"),
        ("?target=-1", "target"),
        ("?target=x", "target"),
        ("?activations=maybe", "activations"),
        ("?colour=red", "colour"),
    ],
)
def test_bad_query_options_are_422(
    client: TestClient, digit_png: bytes, kit: Any, query: str, word: str
) -> None:
    kit.assert_error(upload(client, digit_png, query), 422, word)


def test_json_body_on_the_file_route_is_422(client: TestClient, digit_png: bytes, kit: Any) -> None:
    response = client.post(FILE, json={"image": kit.b64(digit_png)})
    kit.assert_error(response, 422, "file")
