"""Tests for server.preprocess: each step alone, then the whole upload -> MNIST pipeline."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFile, ImageOps

from server.inference import Predictor
from server.preprocess import (
    ImageTooLarge,
    NoDigitFound,
    NotAnImage,
    PreprocessError,
    UnsupportedImageType,
    center_by_mass,
    crop_to_ink,
    decode,
    decode_image,
    digit_from_gray,
    fit_box,
    image_to_gray,
    stages,
    to_mnist,
)

CENTRE = 13.5  # middle of a 28-pixel field, in pixel-centre (index) coordinates


# --- helpers -------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """Save an image to bytes the way an upload would arrive."""
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def draw(
    shape: str,
    size: tuple[int, int] = (280, 280),
    box: tuple[float, float, float, float] = (0.25, 0.15, 0.75, 0.85),
    ink: int = 0,
    paper: int = 255,
) -> Image.Image:
    """A mode-L drawing of a digit-like shape; `box` is (left, top, right, bottom) as fractions."""
    w, h = size
    left, top, right, bottom = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    width = max(2, round(0.08 * min(right - left, bottom - top) + 1))
    img = Image.new("L", size, paper)
    pen = ImageDraw.Draw(img)
    if shape == "zero":
        pen.ellipse((left, top, right, bottom), outline=ink, width=width)
    elif shape == "one":
        pen.line(((left + right) / 2, top, (left + right) / 2, bottom), fill=ink, width=width)
    elif shape == "seven":
        pen.line(((left, top), (right, top), (left + (right - left) * 0.3, bottom)), ink, width)
    elif shape == "slash":
        pen.line(((right, top), (left, bottom)), fill=ink, width=width)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return img


def ink_bbox(field: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero pixels."""
    rows = np.flatnonzero(field.any(axis=1))
    cols = np.flatnonzero(field.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def centre_of_mass(field: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of mass in pixel-index coordinates, computed independently."""
    ys, xs = np.indices(field.shape)
    total = field.sum()
    return float((ys * field).sum() / total), float((xs * field).sum() / total)


def assert_mnist_like(field: np.ndarray) -> None:
    """The MNIST conventions every pipeline output must follow."""
    assert field.shape == (28, 28)
    assert field.dtype == np.float32
    assert field.min() >= 0.0
    assert field.max() == 1.0
    assert max(ink_bbox(field)) in (19, 20, 21)
    cy, cx = centre_of_mass(field)
    assert abs(cy - CENTRE) <= 1.0
    assert abs(cx - CENTRE) <= 1.0, (cy, cx)


def paper_photo(size: int = 240, seed: int = 0, digit: bool = True) -> Image.Image:
    """A photo-like upload: light gray paper with gaussian grain, a soft shadow, dark strokes."""
    rng = np.random.default_rng(seed)
    gray = np.full((size, size), 205.0)
    ys, xs = np.indices(gray.shape)
    gray -= 12.0 * np.exp(-((ys - 0.7 * size) ** 2 + (xs - 0.2 * size) ** 2) / (0.1 * size) ** 2)
    if digit:
        strokes = np.asarray(draw("seven", (size, size), (0.3, 0.25, 0.7, 0.8), 255, 0)) / 255
        gray = gray * (1 - strokes) + 60.0 * strokes
    gray += rng.normal(0.0, 5.0, gray.shape)
    return Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its CRC, for hand-made headers."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def claimed_size_png(width: int, height: int) -> bytes:
    """A tiny 1-bit PNG whose header claims width x height; only its first rows exist."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 4)
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


# --- 1. decode_image ------------------------------------------------------------------------


def halves(mode: str) -> Image.Image:
    """A 16x10 image in `mode`: left half white, right half black."""
    white, black = {
        "1": (1, 0),
        "L": (255, 0),
        "P": (1, 0),
        "RGB": ((255,) * 3, (0,) * 3),
        "RGBA": ((255,) * 4, (0, 0, 0, 255)),
        "LA": ((255, 255), (0, 255)),
        "I;16": (65535, 0),
        "I": (65535, 0),
        "F": (1.0, 0.0),
        "CMYK": ((0, 0, 0, 0), (0, 0, 0, 255)),
    }[mode]
    img = Image.new(mode, (16, 10), white)
    if mode == "P":
        img.putpalette([0, 0, 0, 255, 255, 255])
    img.paste(black, (8, 0, 16, 10))
    return img


MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_becomes_gray_in_unit_range(mode: str) -> None:
    gray = image_to_gray(halves(mode))
    assert gray.shape == (10, 16)
    assert gray.dtype == np.float32
    np.testing.assert_allclose(gray[:, :8], 1.0, atol=1e-3)
    np.testing.assert_allclose(gray[:, 8:], 0.0, atol=1e-3)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I;16", [0, 16384, 65535], [0.0, 0.25, 1.0]),
        ("I", [0, 16384, 65535], [0.0, 0.25, 1.0]),
        ("I", [0, 51, 255], [0.0, 0.2, 1.0]),  # an 8-bit range stored in 32 bits
        ("F", [0.0, 0.25, 1.0], [0.0, 0.25, 1.0]),
    ],
)
def test_wide_modes_keep_their_grey_levels(
    mode: str, values: list[float], expected: list[float]
) -> None:
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    img = Image.fromarray(np.array([values], dtype=dtype))
    assert img.mode == mode
    np.testing.assert_allclose(image_to_gray(img)[0], expected, atol=1e-4)


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("PNG", m) for m in ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"]]
    + [("JPEG", "L"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("WEBP", "RGB"), ("WEBP", "RGBA")]
    + [("BMP", "1"), ("BMP", "L"), ("BMP", "RGB"), ("GIF", "L"), ("GIF", "P")],
)
def test_decode_each_accepted_format_and_mode(fmt: str, mode: str) -> None:
    options = {"quality": 100} if fmt in ("JPEG", "WEBP") else {}
    gray = decode_image(encode(halves(mode).resize((64, 40)), fmt, **options))
    assert gray.shape == (40, 64)
    assert gray.dtype == np.float32
    assert gray.min() >= 0.0
    assert gray.max() <= 1.0
    assert gray[:, :24].mean() > 0.95
    assert gray[:, 40:].mean() < 0.05


def test_exif_orientation_is_applied() -> None:
    upright = draw("seven", (120, 80))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = stored.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    rotated = decode_image(encode(stored, "JPEG", quality=95, exif=exif))
    plain = decode_image(encode(upright, "JPEG", quality=95))
    assert rotated.shape == plain.shape == (80, 120)
    assert np.abs(rotated - plain).mean() < 0.01


def test_gif_uses_its_first_frame() -> None:
    first, second = draw("one", (60, 60)), Image.new("L", (60, 60), 255)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    gray = decode_image(data)
    assert gray.min() == 0.0  # the blank second frame would have no dark pixel


def test_transparent_canvas_with_dark_strokes_goes_on_white() -> None:
    img = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(img).line((25, 5, 25, 45), fill=(0, 0, 0, 255), width=5)
    gray = decode_image(encode(img))
    assert gray[0, 0] == 1.0
    assert gray[25, 25] == 0.0


def test_transparent_canvas_with_light_strokes_goes_on_black() -> None:
    img = Image.new("LA", (50, 50), (255, 0))
    ImageDraw.Draw(img).line((25, 5, 25, 45), fill=(255, 255), width=5)
    gray = decode_image(encode(img))
    assert gray[0, 0] == 0.0
    assert gray[25, 25] == 1.0


def test_palette_transparency_is_composited() -> None:
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 0, 0, 20, 20, 20])
    ImageDraw.Draw(img).rectangle((15, 5, 24, 34), fill=1)
    gray = decode_image(encode(img, "GIF", transparency=0))
    assert gray[0, 0] == 1.0
    assert gray[20, 20] == pytest.approx(20 / 255)


def test_16_bit_transparency_key_is_composited() -> None:
    pixels = np.full((30, 30), 30000, dtype=np.uint16)  # the transparent key: mid grey
    pixels[5:25, 14:16] = 0
    gray = decode_image(encode(Image.fromarray(pixels), transparency=30000))
    assert gray[0, 0] == 1.0
    assert gray[10, 14] == 0.0


def test_transparent_margin_of_a_photo_takes_the_paper_colour() -> None:
    img = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    img.paste((180, 180, 180, 255), (0, 0, 60, 50))  # opaque paper, a transparent strip below
    gray = decode_image(encode(img))
    assert gray[55, 30] == pytest.approx(180 / 255)


# --- 1. decode_image: errors ----------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello, world", np.random.default_rng(1).bytes(4000)])
def test_bytes_that_are_no_image(data: bytes) -> None:
    with pytest.raises(NotAnImage, match="PNG, JPEG, WebP, BMP or GIF"):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_image(fmt: str) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (128, 128), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(NotAnImage, match=r"truncated or corrupt|not a PNG"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_reported_as_truncated() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (128, 128), dtype=np.uint8)
    data = encode(Image.fromarray(noise))
    with pytest.raises(NotAnImage, match="PNG image is truncated or corrupt"):
        decode_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(("fmt", "name"), [("TIFF", "TIFF"), ("ICO", "ICO"), ("PPM", "PPM")])
def test_formats_pillow_reads_but_we_refuse(fmt: str, name: str) -> None:
    with pytest.raises(UnsupportedImageType, match=f"{name} images are not supported"):
        decode_image(encode(draw("one", (32, 32)), fmt))


@pytest.mark.parametrize("size", [(5000, 10), (10, 5000)])
def test_too_wide_or_too_tall(size: tuple[int, int]) -> None:
    with pytest.raises(ImageTooLarge, match="5000"):
        decode_image(encode(Image.new("L", size)))


def test_max_pixels_is_enforced() -> None:
    data = encode(draw("one", (100, 100)))
    with pytest.raises(ImageTooLarge, match="10000 pixels"):
        to_mnist(data, max_pixels=9999)
    assert to_mnist(data, max_pixels=10000).shape == (28, 28)


@pytest.mark.parametrize("side", [20000, 65535])
def test_decompression_bomb_is_refused_from_the_header(side: int) -> None:
    data = claimed_size_png(side, side)
    assert len(data) < 10_000
    start = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        decode_image(data)
    assert time.perf_counter() - start < 0.2  # decoding 400 M pixels would take far longer


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bomb_between_pillow_warning_and_error_limits() -> None:
    with pytest.raises(ImageTooLarge, match="10000x10000"):
        decode_image(claimed_size_png(10000, 10000))


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_bomb_warning_raised_as_error_is_still_too_large() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(claimed_size_png(10000, 10000))


def test_header_check_holds_without_pillows_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        decode_image(claimed_size_png(20000, 20000))


def test_size_check_does_not_touch_pillow_globals() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLarge):
        decode_image(claimed_size_png(20000, 20000))
    assert before == Image.MAX_IMAGE_PIXELS


def test_all_errors_are_value_errors() -> None:
    for error in (NotAnImage, UnsupportedImageType, ImageTooLarge, NoDigitFound):
        assert issubclass(error, PreprocessError)
        assert issubclass(error, ValueError)


# --- 2. ink: polarity --------------------------------------------------------------------------


def test_dark_ink_on_paper_is_inverted() -> None:
    gray = np.full((30, 30), 0.9, dtype=np.float32)
    gray[10:20, 14:16] = 0.1
    ink = stages(gray).ink
    assert ink.dtype == np.float32
    assert ink[15, 15] == pytest.approx(0.9)
    assert ink[0, 0] == pytest.approx(0.1)


def test_light_ink_on_dark_is_kept() -> None:
    gray = np.zeros((30, 30), dtype=np.float32)
    gray[10:20, 14:16] = 0.7
    np.testing.assert_array_equal(stages(gray).ink, gray)


def test_dim_photo_of_paper_is_still_inverted() -> None:
    gray = np.full((30, 30), 0.4, dtype=np.float32)  # under-exposed paper, darker than 0.5
    gray[10:20, 14:16] = 0.05
    assert stages(gray).ink[15, 15] == pytest.approx(0.95)


def test_vignetted_paper_is_still_inverted() -> None:
    ys, xs = np.indices((60, 60))
    gray = (0.85 - 0.3 * np.hypot(ys - 30, xs - 30) / 42).astype(np.float32)  # darker corners
    gray[20:40, 29:31] = 0.15
    ink = stages(gray).ink
    assert ink[30, 30] > 0.8
    assert ink[30, 10] < 0.3


# --- 3. cleaned: noise and specks ------------------------------------------------------------


def test_background_is_removed_and_peak_scaled_to_one() -> None:
    ink = np.full((40, 40), 0.2, dtype=np.float32)
    ink[10:30, 18:22] = 0.7
    clean = stages(ink).cleaned  # light ink on dark: kept as it is
    assert clean.dtype == np.float32
    assert clean.max() == 1.0
    assert np.count_nonzero(clean) == 20 * 4
    assert clean[0, 0] == 0.0


def test_thin_light_mouse_stroke_survives() -> None:
    ink = np.zeros((280, 280), dtype=np.float32)
    ink[40:240, 140] = 0.5  # a 1-px anti-aliased line straddling two pixel columns
    ink[40:240, 141] = 0.5
    clean = stages(ink).cleaned  # light ink on dark: kept as it is
    assert clean.max() == 1.0
    assert np.count_nonzero(clean) == 400


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.06])
def test_paper_grain_alone_is_erased(sigma: float) -> None:
    rng = np.random.default_rng(4)
    ink = (0.2 + rng.normal(0.0, sigma, (300, 300))).astype(np.float32)
    with pytest.raises(NoDigitFound, match="no digit found in the image"):
        stages(ink)


def test_faint_shadow_and_lone_specks_are_dropped_next_to_a_digit() -> None:
    ink = np.zeros((100, 100), dtype=np.float32)
    ink[60:95, 5:40] = 0.1  # a faint shadow
    ink[20:80, 48:53] = 0.8  # the stroke
    ink[3, 90] = 0.8  # a speck of dust
    clean = stages(ink).cleaned  # light ink on dark: kept as it is
    assert not clean[60:95, 5:40].any()
    assert clean[3, 90] == 0.0
    assert clean[20:80, 48:53].min() == 1.0


# --- 4. crop_to_ink -------------------------------------------------------------------------


def test_crop_to_bounding_box() -> None:
    ink = np.zeros((50, 60), dtype=np.float32)
    ink[12, 7] = 0.3
    ink[30, 41] = 1.0
    crop = crop_to_ink(ink)
    assert crop.shape == (19, 35)
    assert crop[0, 0] == pytest.approx(0.3)
    assert crop[-1, -1] == 1.0


def test_crop_of_nothing_means_no_digit() -> None:
    with pytest.raises(NoDigitFound, match="no digit found in the image"):
        crop_to_ink(np.zeros((10, 10), dtype=np.float32))


# --- 5. fit_box -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((100, 40), (20, 8)),
        ((40, 100), (8, 20)),
        ((300, 6), (20, 1)),
        ((4, 500), (1, 20)),
        ((5, 3), (20, 12)),
        ((1, 1), (20, 20)),
        ((20, 20), (20, 20)),
    ],
)
def test_fit_box_keeps_aspect_ratio(shape: tuple[int, int], expected: tuple[int, int]) -> None:
    box = fit_box(np.ones(shape, dtype=np.float32))
    assert box.shape == expected
    assert box.dtype == np.float32
    np.testing.assert_allclose(box, 1.0, atol=1e-5)


def test_fit_box_anti_aliases_and_keeps_peak_at_one() -> None:
    ink = np.zeros((200, 100), dtype=np.float32)
    ink[:, :5] = 1.0  # 5 of every 10 source columns per output pixel column 0 -> half
    ink[:, 50:] = 0.4
    box = fit_box(ink)
    assert box.shape == (20, 10)
    assert box.max() == 1.0
    assert box.min() >= 0.0
    np.testing.assert_allclose(box[:, 0], 1.0, atol=1e-5)  # 0.5 averaged, then scaled to 1
    np.testing.assert_allclose(box[:, 5:], 0.8, atol=1e-5)


# --- 6. center_by_mass ----------------------------------------------------------------------


def test_solid_rectangle_lands_exactly_centred() -> None:
    field = center_by_mass(np.ones((20, 8), dtype=np.float32))
    expected = np.zeros((28, 28), dtype=np.float32)
    expected[4:24, 10:18] = 1.0  # centre of mass (13.5, 13.5)
    np.testing.assert_array_equal(field, expected)


def test_lopsided_mass_moves_the_box_off_centre() -> None:
    box = np.zeros((12, 10), dtype=np.float32)
    box[0:3, :] = 1.0  # a "7"-like heavy top: centre of mass at row 69/39 = 1.77
    box[3:, 4] = 0.5
    field = center_by_mass(box)
    cy, cx = centre_of_mass(field)
    assert abs(cy - CENTRE) <= 0.5
    assert abs(cx - CENTRE) <= 0.5
    rows = np.flatnonzero(field.any(axis=1))
    assert (rows[0], rows[-1]) == (12, 23)  # centring the box itself would give rows 8..19


def test_shift_is_clipped_to_keep_the_digit_inside() -> None:
    box = np.zeros((20, 20), dtype=np.float32)
    box[0, 0] = 1.0
    box[19, 19] = 0.01
    field = center_by_mass(box)
    assert field[8, 8] == 1.0
    assert field[27, 27] == pytest.approx(0.01)


def test_box_larger_than_the_field_is_refused() -> None:
    with pytest.raises(ValueError, match="29x10"):
        center_by_mass(np.ones((29, 10), dtype=np.float32))


def test_steps_leave_their_input_untouched() -> None:
    gray = np.asarray(draw("zero", (60, 60)), dtype=np.float32) / 255
    gray[0, 0] = 0.5  # a lone speck for the cleaning to drop from its own copy
    before = gray.copy()
    stage = stages(gray)
    np.testing.assert_array_equal(gray, before)
    arrays = [stage.cleaned]
    for step in (crop_to_ink, fit_box, center_by_mass):
        before = arrays[-1].copy()
        arrays.append(step(arrays[-1]))
        np.testing.assert_array_equal(arrays[-2], before)


# --- the whole pipeline ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["zero", "one", "seven", "slash"])
@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((28, 28), (0.2, 0.1, 0.8, 0.9)),
        ((280, 280), (0.05, 0.05, 0.45, 0.6)),
        ((640, 360), (0.6, 0.3, 0.9, 0.95)),
        ((900, 1200), (0.1, 0.5, 0.5, 0.99)),
    ],
)
def test_pipeline_follows_mnist_conventions(
    shape: str, size: tuple[int, int], box: tuple[float, float, float, float]
) -> None:
    assert_mnist_like(to_mnist(encode(draw(shape, size, box))))


def test_solid_bar_upload_matches_the_hand_computed_field() -> None:
    img = Image.new("L", (300, 200), 255)
    img.paste(0, (50, 20, 90, 120))  # a 40x100 bar -> 8x20, centre of mass on 13.5
    expected = np.zeros((28, 28), dtype=np.float32)
    expected[4:24, 10:18] = 1.0
    np.testing.assert_allclose(to_mnist(encode(img)), expected, atol=1e-5)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_both_polarities_give_the_same_digit(fmt: str) -> None:
    dark_on_light = draw("zero", (200, 200))
    light_on_dark = draw("zero", (200, 200), ink=255, paper=0)
    a = to_mnist(encode(dark_on_light, fmt))
    b = to_mnist(encode(light_on_dark, fmt))
    assert np.abs(a - b).max() < 0.1


def test_transparent_png_and_canvas_export_agree() -> None:
    strokes = draw("seven", (280, 280), ink=255, paper=0)
    transparent = Image.new("RGBA", strokes.size, (0, 0, 0, 0))
    transparent.putalpha(strokes)  # black strokes, transparent elsewhere
    canvas = strokes.convert("RGB")  # white strokes on opaque black
    a, b = to_mnist(encode(transparent)), to_mnist(encode(canvas))
    assert_mnist_like(a)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_thin_mouse_stroke_on_a_canvas_export() -> None:
    canvas = Image.new("RGB", (280, 280), "black")
    ImageDraw.Draw(canvas).line((140, 40, 150, 240), fill=(90, 90, 90), width=1)
    field = to_mnist(encode(canvas))
    assert_mnist_like(field)
    assert ink_bbox(field)[1] <= 3  # a "1" keeps its aspect ratio: tall and thin


@pytest.mark.parametrize("color", [0, 255])
def test_blank_image_has_no_digit(color: int) -> None:
    with pytest.raises(NoDigitFound, match="no digit found in the image"):
        to_mnist(encode(Image.new("L", (100, 80), color)))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_photo_of_empty_paper_has_no_digit(fmt: str) -> None:
    with pytest.raises(NoDigitFound):
        to_mnist(encode(paper_photo(digit=False), fmt))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_photo_of_a_digit_matches_the_clean_drawing(fmt: str) -> None:
    photo = to_mnist(encode(paper_photo(), fmt))
    clean = to_mnist(encode(draw("seven", (240, 240), (0.3, 0.25, 0.7, 0.8))))
    assert_mnist_like(photo)
    assert ink_bbox(photo) == ink_bbox(clean)
    assert np.abs(photo - clean).mean() < 0.05


def test_rotated_photo_matches_upright() -> None:
    upright = draw("seven", (160, 120))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    a = to_mnist(encode(stored, "JPEG", quality=95, exif=exif))
    b = to_mnist(encode(upright, "JPEG", quality=95))
    assert np.abs(a - b).max() < 0.1


def test_concurrent_calls_agree_with_sequential_ones() -> None:
    uploads = [encode(draw(s, (200 + 10 * i, 220))) for i, s in enumerate(["zero", "one"] * 4)]
    sequential = [to_mnist(u) for u in uploads]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        concurrent = list(pool.map(to_mnist, uploads))
    for a, b in zip(sequential, concurrent, strict=True):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    width=st.integers(24, 400),
    height=st.integers(24, 400),
    corners=st.tuples(*[st.floats(0.0, 1.0)] * 4),
    pen=st.integers(1, 30),
    dark_on_light=st.booleans(),
)
def test_any_stroke_anywhere_follows_mnist_conventions(
    width: int,
    height: int,
    corners: tuple[float, float, float, float],
    pen: int,
    dark_on_light: bool,
) -> None:
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    img = Image.new("L", (width, height), paper)
    x0, y0, x1, y1 = corners
    line = (x0 * (width - 1), y0 * (height - 1), x1 * (width - 1), y1 * (height - 1))
    assume(np.hypot(line[2] - line[0], line[3] - line[1]) >= 4)  # a lone dot is no digit
    assume(pen <= min(width, height) // 8)  # a pen as wide as the page paints no digit
    ImageDraw.Draw(img).line(line, fill=ink, width=pen)
    assert_mnist_like(to_mnist(encode(img)))


# --- the fast path against the straightforward pipeline -------------------------------------
#
# digit_from_gray works on uint8 levels and on the ink's bounding box alone. The reference
# below is the straightforward implementation it replaced: every step a float pass over the
# whole image. Both must give the same digit.

SHIPPED_WEIGHTS = Path(__file__).resolve().parents[2] / "model_weights" / "mnist_cnn.npz"


def naive_gray(img: Image.Image) -> np.ndarray:
    """Any mode -> (H, W) float32 in [0, 1], transparency flattened (the previous decoder)."""

    def unit(channel: Image.Image) -> np.ndarray:
        return np.asarray(channel).astype(np.float32) * np.float32(1 / 255)

    alpha = None
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        raw = np.asarray(img)
        key = img.info.get("transparency")
        alpha = (raw != key).astype(np.float32) if isinstance(key, int) else None
        values = np.maximum(np.nan_to_num(raw.astype(np.float32), nan=0, posinf=0, neginf=0), 0)
        if img.mode.startswith("I;16"):
            full = 65535.0
        else:
            peak = float(values.max(initial=0.0))
            full = next((s for s in (1.0, 255.0, 65535.0) if peak <= s), peak)
        gray = np.minimum(values / full, 1.0).astype(np.float32)
    elif img.has_transparency_data:
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        gray, alpha = unit(rgba.convert("L")), unit(rgba.getchannel("A"))
    else:
        gray = unit(img.convert("L"))
    if alpha is None or alpha.min() >= 1.0:
        return gray
    opaque = alpha > 0.5
    if opaque.mean() < 0.5:
        weight = float(alpha.sum())
        stroke = float((gray * alpha).sum()) / weight if weight > 0 else 1.0
        background = 1.0 if stroke < 0.5 else 0.0
    else:
        background = float(np.median(gray[opaque]))
    return ((gray - np.float32(background)) * alpha + np.float32(background)).astype(np.float32)


def naive_frame(image: np.ndarray) -> np.ndarray:
    """The outer 5% of each side, by a mask."""
    h, w = image.shape
    k = max(1, round(min(h, w) * 0.05))
    if 2 * k >= min(h, w):
        return image.ravel()
    inner = np.zeros(image.shape, dtype=bool)
    inner[k:-k, k:-k] = True
    return image[~inner]


def naive_digit(gray: np.ndarray) -> np.ndarray:
    """Polarity, noise cut, speck filter, crop, 20-px box, centre of mass: all full-frame."""
    # polarity: invert when the darkest mark departs further from the frame than the lightest
    background = float(np.median(naive_frame(gray)))
    darker, lighter = background - float(gray.min()), float(gray.max()) - background
    invert = darker > lighter if abs(darker - lighter) >= 0.1 else background >= 0.5
    ink = np.subtract(1.0, gray, dtype=np.float32) if invert else gray
    # noise: six robust sigmas of the frame, or 20% of the peak, above the frame's level
    frame = naive_frame(ink)
    level = float(np.median(frame))
    noise = 1.4826 * float(np.median(np.abs(frame - level)))
    peak = float(ink.max()) - level
    threshold = max(6.0 * noise, 0.2 * peak)
    if peak < 0.15 or peak <= threshold:
        raise NoDigitFound("nothing stands out")
    clean = np.maximum(ink - np.float32(level + threshold), 0)
    # specks: an inked pixel with no inked 8-neighbour is dropped, one offset at a time
    padded = np.pad(clean > 0, 1)
    h, w = clean.shape
    neighbours = sum(
        padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w].astype(int)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dy, dx) != (0, 0)
    )
    clean = np.where(neighbours > 0, clean, np.float32(0))
    if clean.max() <= 0:
        raise NoDigitFound("only specks")
    clean /= np.float32(clean.max())
    ys, xs = np.nonzero(clean)
    crop = clean[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    # box: the longer side to 20 px, area-averaged down or Lanczos up, peak back to 1
    ch, cw = crop.shape
    scale = 20 / max(ch, cw)
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    box = np.clip(np.asarray(Image.fromarray(crop).resize(size, resample)), 0, 1)
    box = box / box.max()
    # paste so the centre of mass is at (13.5, 13.5), rounded to whole pixels, kept inside
    bh, bw = box.shape
    cy = (box.sum(axis=1) * np.arange(bh)).sum() / box.sum()
    cx = (box.sum(axis=0) * np.arange(bw)).sum() / box.sum()
    top = int(np.clip(np.floor(13.5 - cy + 0.5), 0, 28 - bh))
    left = int(np.clip(np.floor(13.5 - cx + 0.5), 0, 28 - bw))
    field = np.zeros((28, 28), dtype=np.float32)
    field[top : top + bh, left : left + bw] = box
    return field


def naive_to_mnist(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        with contextlib.suppress(Exception):
            ImageOps.exif_transpose(img, in_place=True)
        return naive_digit(naive_gray(img))


def pad_drawing(rng: np.random.Generator) -> Image.Image:
    """What the page sends: round white strokes, anti-aliased, on opaque black RGBA 280x280."""
    big = 4 * 280
    img = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(img)
    width = 4 * int(rng.integers(8, 41))  # the page's brush range
    for _ in range(int(rng.integers(1, 4))):
        start = rng.uniform(0.15, 0.85, 2)
        steps = np.cumsum(rng.normal(0, 0.08, (int(rng.integers(2, 12)), 2)), axis=0)
        points = [tuple(p) for p in np.clip(start + steps, 0.05, 0.95) * big]
        pen.line([tuple(start * big), *points], fill=255, width=width, joint="curve")
        for x, y in points[-1:]:
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    gray = img.resize((280, 280), Image.Resampling.BOX)
    return Image.merge("RGBA", (gray, gray, gray, Image.new("L", gray.size, 255)))


def random_upload(rng: np.random.Generator) -> bytes:
    """Strokes of any size, polarity and contrast, with grain, specks, alpha and JPEG ringing."""
    if rng.random() < 0.3:
        return encode(pad_drawing(rng), compress_level=1)  # level 1: the test's time is in zlib
    w, h = (int(v) for v in rng.integers(24, 360, 2))
    dark = bool(rng.random() < 0.5)
    paper, ink = (int(rng.integers(120, 256)), int(rng.integers(0, 110)))
    if not dark:
        paper, ink = 255 - paper, 255 - ink
    img = Image.new("L", (w, h), paper)
    pen = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        points = [tuple(p) for p in rng.uniform(0, 1, (int(rng.integers(2, 6)), 2)) * (w, h)]
        pen.line(points, fill=ink, width=int(rng.integers(1, max(2, min(w, h) // 8))))
    pixels = np.asarray(img, dtype=np.float64)
    pixels = pixels + rng.normal(0, rng.choice([0.0, 2.0, 6.0, 15.0]), pixels.shape)
    if rng.random() < 0.3:
        pixels[int(rng.integers(0, h)), int(rng.integers(0, w))] = ink  # a speck of dust
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    kind = rng.choice(["L", "RGB", "RGBA", "LA", "I;16", "P"])
    if kind == "I;16":
        return encode(Image.fromarray(np.asarray(img).astype(np.uint16) * 257), compress_level=1)
    img = img.convert(str(kind))
    if kind in ("RGBA", "LA") and rng.random() < 0.6:
        alpha = np.full((h, w), 255, dtype=np.uint8)
        alpha[: int(rng.integers(1, h))] = int(rng.integers(0, 255))  # a see-through band
        img.putalpha(Image.fromarray(alpha))
    if kind in ("L", "RGB") and rng.random() < 0.5:
        return encode(img, "JPEG")
    return encode(img, compress_level=1)


def outcome(function: object, data: bytes) -> np.ndarray | type[Exception]:
    """The digit, or the type of PreprocessError raised."""
    try:
        return function(data)  # type: ignore[operator,no-any-return]
    except PreprocessError as error:
        return type(error)


def test_fast_path_matches_the_straightforward_pipeline() -> None:
    rng = np.random.default_rng(2024)
    uploads = [random_upload(rng) for _ in range(200)]
    uploads += [encode(paper_photo(seed=s), fmt) for s in range(3) for fmt in ("PNG", "JPEG")]
    uploads += [encode(draw(s, (280, 280))) for s in ("zero", "one", "seven", "slash")]
    fast, naive, kinds = [], [], set()
    for data in uploads:
        got, expected = outcome(to_mnist, data), outcome(naive_to_mnist, data)
        kinds.add(decode(data).dtype.name)
        if isinstance(expected, type):
            assert got is NoDigitFound, f"naive: {expected.__name__}, fast: {got}"
            continue
        assert isinstance(got, np.ndarray), f"fast raised {got}"
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        fast.append(got)
        naive.append(expected)
    assert kinds == {"uint8", "float32"}  # both decoder outputs were exercised
    assert len(fast) > 150  # most of them are digits
    if SHIPPED_WEIGHTS.is_file():  # CI ships it; a fresh clone without it still checks pixels
        model = Predictor.from_file(SHIPPED_WEIGHTS)
        labels = model.predict(np.stack(fast)).argmax(axis=1)
        np.testing.assert_array_equal(labels, model.predict(np.stack(naive)).argmax(axis=1))


@pytest.mark.parametrize("seed", range(3))
def test_levels_and_floats_give_the_same_digit(seed: int) -> None:
    data = encode(pad_drawing(np.random.default_rng(seed)))
    levels = decode(data)
    assert levels.dtype == np.uint8
    np.testing.assert_allclose(decode_image(data), levels / 255, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(digit_from_gray(levels), digit_from_gray(decode_image(data)))


def test_decode_gives_levels_for_opaque_8_bit_and_floats_otherwise() -> None:
    opaque = Image.new("RGBA", (40, 40), (10, 20, 30, 255))
    see_through = Image.new("RGBA", (40, 40), (10, 20, 30, 128))
    wide = Image.fromarray(np.full((40, 40), 1000, dtype=np.uint16))
    assert decode(encode(opaque)).dtype == np.uint8
    assert decode(encode(opaque.convert("L"), "JPEG")).dtype == np.uint8
    assert decode(encode(see_through)).dtype == np.float32
    assert decode(encode(wide)).dtype == np.float32
