"""Bad input, one case per test: the right 4xx and a `detail` naming the problem, never a 5xx."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from server.api.app import create_app
from server.config import Settings

PREDICT = "/api/v1/predict"
FILE = "/api/v1/predict/file"
BATCH = "/api/v1/predict/batch"
MIB = 1024 * 1024
SMALL_LIMIT = 4000  # bytes, for the app with a small body limit
SENTINEL = 0.123456  # a pixel value swapped for raw JSON tokens such as NaN


# --- helpers -------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, rows: int, bit_depth: int = 8) -> bytes:
    """A gray PNG whose header says width x height and whose IDAT holds `rows` zero rows."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    row_bytes = 1 + (width * bit_depth + 7) // 8  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    zero_row = bytes(row_bytes)
    idat = b"".join(compressor.compress(zero_row) for _ in range(rows)) + compressor.flush()
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def raw_json(client: TestClient, text: str, path: str = PREDICT) -> Any:
    return client.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def pixels_json_with(token: str, digit_pixels: np.ndarray) -> str:
    """A predict body whose pixels[3][4] is the raw JSON `token` (e.g. NaN, which json.dumps
    would refuse to write)."""
    grid = digit_pixels.copy()
    grid[3, 4] = SENTINEL
    text = json.dumps({"pixels": grid.tolist()})
    assert text.count(str(SENTINEL)) == 1
    return text.replace(str(SENTINEL), token)


def chunks_of(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A streamed body: httpx sends it chunked, without Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="module")
def small_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """An app whose body limit is SMALL_LIMIT bytes."""
    with TestClient(create_app(make_settings(max_body_bytes=SMALL_LIMIT))) as test_client:
        yield test_client


# --- the body ------------------------------------------------------------------------------


def test_body_not_json_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(raw_json(client, "{pixels: oops"), 422, "not valid JSON")


def test_body_that_is_not_utf8_is_422(client: TestClient, kit: Any) -> None:
    # the contract's "not JSON" case: JSON is UTF-8 text, these bytes are not
    response = client.post(
        PREDICT, content=b'{"image": "\xa1\x90\x9c"}', headers={"Content-Type": "application/json"}
    )
    kit.assert_error(response, 422, "JSON")


def test_empty_body_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(raw_json(client, ""), 422, "body")


def test_body_that_is_a_json_list_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(raw_json(client, "[1, 2, 3]"), 422, "object")


def test_neither_image_nor_pixels_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post(PREDICT, json={"activations": True}), 422, "exactly one")


def test_both_image_and_pixels_is_422(
    client: TestClient, kit: Any, digit_png: bytes, digit_pixels: np.ndarray
) -> None:
    body = {"image": kit.b64(digit_png), "pixels": digit_pixels.tolist()}
    kit.assert_error(client.post(PREDICT, json=body), 422, "exactly one")


def test_unknown_extra_field_is_422(client: TestClient, kit: Any, digit_png: bytes) -> None:
    body = {"image": kit.b64(digit_png), "colour": "red"}
    kit.assert_error(client.post(PREDICT, json=body), 422, "colour")


def test_wrong_content_type_is_422(client: TestClient, kit: Any, digit_png: bytes) -> None:
    text = json.dumps({"image": kit.b64(digit_png)})
    response = client.post(PREDICT, content=text, headers={"Content-Type": "text/plain"})
    kit.assert_error(response, 422, "object")


def test_form_body_on_the_json_route_is_422(client: TestClient, kit: Any, digit_png: bytes) -> None:
    response = client.post(PREDICT, files={"image": ("digit.png", digit_png, "image/png")})
    kit.assert_error(response, 422, "object")


# --- the image -----------------------------------------------------------------------------


def test_bad_base64_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post(PREDICT, json={"image": "iVBORw0K*&^%"}), 422, "base64")


def test_base64_with_wrong_padding_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post(PREDICT, json={"image": "iVBORw0KGgo"}), 422, "base64")


def test_data_url_not_marked_base64_is_422(client: TestClient, kit: Any) -> None:
    body = {"image": "data:image/png,iVBORw0KGgo="}
    kit.assert_error(client.post(PREDICT, json=body), 422, "base64")


def test_empty_image_is_422(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post(PREDICT, json={"image": ""}), 422, "empty")


def test_bytes_that_are_not_an_image_are_422(client: TestClient, kit: Any) -> None:
    noise = np.random.default_rng(0).bytes(3000)
    response = client.post(PREDICT, json={"image": kit.b64(noise)})
    kit.assert_error(response, 422, "PNG, JPEG, WebP, BMP or GIF")


def test_truncated_png_is_422(client: TestClient, kit: Any) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (96, 96), dtype=np.uint8)
    data = kit.image_bytes(Image.fromarray(noise))
    response = client.post(PREDICT, json={"image": kit.b64(data[: len(data) // 2])})
    kit.assert_error(response, 422, "truncated")


def test_truncated_jpeg_is_422(client: TestClient, kit: Any) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (96, 96), dtype=np.uint8)
    data = kit.image_bytes(Image.fromarray(noise), "JPEG")
    response = client.post(PREDICT, json={"image": kit.b64(data[: len(data) // 2])})
    kit.assert_error(response, 422, "truncated")


def test_tiff_header_with_a_corrupt_directory_is_422(client: TestClient, kit: Any) -> None:
    # Pillow warns (UserWarning "Corrupt EXIF data") while failing to open it; with warnings
    # as errors, as this suite and `python -W error` run, that must still be a 4xx.
    data = b"II*\x00\x08\x00\x00\x00"
    kit.assert_error(client.post(PREDICT, json={"image": kit.b64(data)}), 422, "PNG, JPEG")


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM"])
def test_unsupported_image_type_is_415(client: TestClient, kit: Any, fmt: str) -> None:
    data = kit.image_bytes(kit.draw_digit(1, size=64), fmt)
    kit.assert_error(client.post(PREDICT, json={"image": kit.b64(data)}), 415, fmt)


def test_image_wider_than_4096_is_413(client: TestClient, kit: Any) -> None:
    data = kit.image_bytes(Image.new("L", (4097, 1), 255))
    kit.assert_error(client.post(PREDICT, json={"image": kit.b64(data)}), 413, "4097")


def test_image_4096_wide_is_not_too_large(client: TestClient, kit: Any) -> None:
    data = kit.image_bytes(Image.new("L", (4096, 1), 255))
    # blank, so it goes on to "no digit"; the size itself is allowed
    response = client.post(PREDICT, json={"image": kit.b64(data)})
    kit.assert_error(response, 422, "no digit found in the image")


def test_header_claiming_5000x5000_is_413(client: TestClient, kit: Any) -> None:
    data = png_bytes(5000, 5000, rows=1)
    assert len(data) < 200
    kit.assert_error(client.post(PREDICT, json={"image": kit.b64(data)}), 413, "5000x5000")


def test_decompression_bomb_is_413(client: TestClient, kit: Any) -> None:
    data = png_bytes(8192, 8192, rows=8192, bit_depth=1)  # 67 M pixels in about 10 KB
    assert len(data) < 20_000
    kit.assert_error(client.post(PREDICT, json={"image": kit.b64(data)}), 413, "8192")


def test_bomb_over_pillows_own_limit_is_413(client: TestClient, kit: Any) -> None:
    data = png_bytes(65535, 65535, rows=1)  # Pillow's DecompressionBombError territory
    # refused from the header (server/preprocess/png.py reads it before Pillow would): nothing
    # inflated
    detail = kit.assert_error(
        client.post(PREDICT, json={"image": kit.b64(data)}), 413, "65535x65535"
    )
    assert "at most 4096" in detail


@pytest.mark.parametrize(
    "img",
    [Image.new("L", (200, 200), 255), Image.new("L", (200, 200), 0), Image.new("L", (9, 9), 128)],
    ids=["white", "black", "gray"],
)
def test_blank_image_is_422_no_digit_found(client: TestClient, kit: Any, img: Image.Image) -> None:
    response = client.post(PREDICT, json={"image": kit.png_b64(img)})
    kit.assert_error(response, 422, "no digit found in the image")


# --- pixels --------------------------------------------------------------------------------


def test_too_few_pixel_rows_is_422(client: TestClient, kit: Any, digit_pixels: np.ndarray) -> None:
    body = {"pixels": digit_pixels[:27].tolist()}
    kit.assert_error(client.post(PREDICT, json=body), 422, "28 rows", "27 rows")


def test_too_short_pixel_rows_is_422(
    client: TestClient, kit: Any, digit_pixels: np.ndarray
) -> None:
    body = {"pixels": digit_pixels[:, :27].tolist()}
    kit.assert_error(client.post(PREDICT, json=body), 422, "28 numbers", "27")


def test_flat_pixels_are_422(client: TestClient, kit: Any, digit_pixels: np.ndarray) -> None:
    body = {"pixels": digit_pixels.ravel().tolist()}
    kit.assert_error(client.post(PREDICT, json=body), 422, "pixels")


def test_non_numeric_pixels_are_422(client: TestClient, kit: Any, digit_pixels: np.ndarray) -> None:
    grid: list[list[Any]] = digit_pixels.tolist()
    grid[0][0] = "white"
    kit.assert_error(client.post(PREDICT, json={"pixels": grid}), 422, "pixels")


@pytest.mark.parametrize("value", [1.5, -0.1, 255])
def test_pixel_outside_0_1_is_422(
    client: TestClient, kit: Any, digit_pixels: np.ndarray, value: float
) -> None:
    grid = digit_pixels.copy()
    grid[3, 4] = value
    response = client.post(PREDICT, json={"pixels": grid.tolist()})
    kit.assert_error(response, 422, "pixels[3][4]", "[0, 1]")


def test_nan_pixel_is_422(client: TestClient, kit: Any, digit_pixels: np.ndarray) -> None:
    response = raw_json(client, pixels_json_with("NaN", digit_pixels))
    kit.assert_error(response, 422, "pixels[3][4]", "nan")


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "1e400"])
def test_infinite_pixel_is_422(
    client: TestClient, kit: Any, digit_pixels: np.ndarray, token: str
) -> None:
    response = raw_json(client, pixels_json_with(token, digit_pixels))
    kit.assert_error(response, 422, "pixels[3][4]", "inf")


def test_huge_integer_pixel_is_422(client: TestClient, kit: Any, digit_pixels: np.ndarray) -> None:
    response = raw_json(client, pixels_json_with("1" + "0" * 400, digit_pixels))
    kit.assert_error(response, 422, "pixels")


# --- options -------------------------------------------------------------------------------


def test_unknown_encoding_is_422(client: TestClient, kit: Any, digit_png: bytes) -> None:
    body = {"image": kit.b64(digit_png), "encoding": "hex"}
    kit.assert_error(client.post(PREDICT, json=body), 422, "encoding")


@pytest.mark.parametrize("target", [10, -1, "x", 2.5])
def test_bad_target_is_422(client: TestClient, kit: Any, digit_png: bytes, target: Any) -> None:
    body = {"image": kit.b64(digit_png), "saliency": True, "target": target}
    kit.assert_error(client.post(PREDICT, json=body), 422, "target")


def test_non_boolean_activations_is_422(client: TestClient, kit: Any, digit_png: bytes) -> None:
    body = {"image": kit.b64(digit_png), "activations": "perhaps"}
    kit.assert_error(client.post(PREDICT, json=body), 422, "activations")


# --- body size -----------------------------------------------------------------------------


def oversized_json(size: int) -> bytes:
    """A syntactically fine predict body of exactly `size` bytes."""
    head, tail = b'{"image": "', b'"}'
    return head + b"A" * (size - len(head) - len(tail)) + tail


def test_body_over_the_default_5_mib_limit_is_413(client: TestClient, kit: Any) -> None:
    body = oversized_json(5 * MIB + 1)
    response = client.post(PREDICT, content=body, headers={"Content-Type": "application/json"})
    assert response.request.headers["content-length"] == str(len(body))
    kit.assert_error(response, 413, "larger than the limit", str(5 * MIB))


def test_streamed_body_over_the_default_limit_is_413(client: TestClient, kit: Any) -> None:
    response = client.post(
        PREDICT,
        content=chunks_of(oversized_json(5 * MIB + 1)),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    kit.assert_error(response, 413, "larger than the limit")


def test_body_at_the_small_limit_is_read(small_client: TestClient, kit: Any) -> None:
    response = small_client.post(
        PREDICT, content=oversized_json(SMALL_LIMIT), headers={"Content-Type": "application/json"}
    )
    kit.assert_error(response, 422, "base64")  # read and judged, not refused for its size


def test_body_over_a_small_limit_is_413(small_client: TestClient, kit: Any) -> None:
    response = small_client.post(
        PREDICT,
        content=oversized_json(SMALL_LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    kit.assert_error(response, 413, str(SMALL_LIMIT))


def test_streamed_body_over_a_small_limit_is_413(small_client: TestClient, kit: Any) -> None:
    response = small_client.post(
        PREDICT,
        content=chunks_of(oversized_json(SMALL_LIMIT * 3), size=1000),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    kit.assert_error(response, 413, str(SMALL_LIMIT))


def multipart(data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "xYzZY"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_upload_over_a_small_limit_is_413(small_client: TestClient, kit: Any) -> None:
    body, headers = multipart(bytes(SMALL_LIMIT))
    kit.assert_error(small_client.post(FILE, content=body, headers=headers), 413, "limit")


def test_streamed_upload_over_a_small_limit_is_413(small_client: TestClient, kit: Any) -> None:
    body, headers = multipart(bytes(SMALL_LIMIT * 3))
    response = small_client.post(FILE, content=chunks_of(body, size=1000), headers=headers)
    assert "content-length" not in response.request.headers
    kit.assert_error(response, 413, "limit")


def test_batch_over_a_small_limit_is_413(small_client: TestClient, kit: Any) -> None:
    body = json.dumps({"images": ["A" * 100] * 50}).encode()
    assert len(body) > SMALL_LIMIT
    response = small_client.post(BATCH, content=body, headers={"Content-Type": "application/json"})
    kit.assert_error(response, 413, "limit")


def test_small_request_after_a_refused_one_still_works(
    small_client: TestClient, digit_pixels: np.ndarray
) -> None:
    small_client.post(PREDICT, content=oversized_json(SMALL_LIMIT + 1))
    assert small_client.get("/healthz").json() == {"status": "ok"}


# --- methods and paths ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [PREDICT, FILE, BATCH])
def test_get_on_a_post_route_is_405(client: TestClient, kit: Any, path: str) -> None:
    # the shipped app: front end mounted at /
    kit.assert_error(client.get(path), 405, "method not allowed")


@pytest.mark.parametrize("path", [PREDICT, FILE, BATCH])
def test_get_on_a_post_route_is_405_without_the_front_end(
    make_settings: Callable[..., Settings], kit: Any, tmp_path: Any, path: str
) -> None:
    settings = make_settings(web_dir=tmp_path / "no-front-end")
    with TestClient(create_app(settings)) as bare:
        kit.assert_error(bare.get(path), 405, "method not allowed")


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/model"])
def test_post_on_a_get_route_is_405(client: TestClient, kit: Any, path: str) -> None:
    kit.assert_error(client.post(path, json={}), 405, "method not allowed")


def test_put_on_predict_is_405(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.put(PREDICT, json={}), 405, "method not allowed")


def test_unknown_api_path_is_404(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.get("/api/v1/nothing-here"), 404, "not found")
