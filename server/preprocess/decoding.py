"""Uploaded bytes -> upright (H, W) gray: a format and size check before any pixel is decoded.

Canvas exports go through png.py, everything else through Pillow. Nothing here mutates module
globals (Pillow's or ours), so it is safe to call from threads.
"""

from __future__ import annotations

import contextlib
import io
import struct

import numpy as np
from PIL import Image, ImageOps

from server.preprocess import png
from server.preprocess.errors import ImageTooLarge, NotAnImage, UnsupportedImageType

MAX_SIDE = 4096  # larger uploads are refused before their pixels are decoded
MAX_PIXELS = MAX_SIDE * MAX_SIDE

# Pillow's format names we accept; MPO is what Pillow calls a camera JPEG holding extra images.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF"})
EXPECTED = "a PNG, JPEG, WebP, BMP or GIF image"

# What Pillow's parsers raise on malformed input (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    ZeroDivisionError,
    UserWarning,  # e.g. "Corrupt EXIF data" when warnings are errors
)


def decode(data: bytes, max_side: int = MAX_SIDE, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an upload to upright (H, W) gray, refusing bombs before decoding.

    uint8 levels (k means k / 255) for 8-bit opaque images, most uploads and every canvas
    export, so the next steps need not make floats of it all; float32 in [0, 1] otherwise.
    """
    _check_bytes(data)
    plain = png.parse(data)
    if plain is not None:  # a canvas export, most likely: a third of Pillow's time
        _check_size(plain.size, max_side, max_pixels)
        decoded = plain.gray()
        if decoded is not None:
            return _flatten(*decoded)
    with _open(data) as img:
        _check_format(img)
        _check_size(img.size, max_side, max_pixels)
        return _gray(_upright(_load(img)))


def decode_image(
    data: bytes, max_side: int = MAX_SIDE, *, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode an upload to upright (H, W) float32 gray in [0, 1], refusing bombs before decoding."""
    return as_unit(decode(data, max_side, max_pixels=max_pixels))


def image_to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W) float32 in [0, 1], so later steps see one kind of array."""
    return as_unit(_gray(img))


def as_unit(gray: np.ndarray) -> np.ndarray:
    """uint8 levels -> float32 in [0, 1]; float gray passes as it is."""
    return _unit(gray) if gray.dtype == np.uint8 else gray


def _gray(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W) uint8 levels when 8-bit and opaque, else float32 in [0, 1]."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        raw = np.asarray(img)
        gray = _scale_wide(raw, img.mode)
        key = img.info.get("transparency")
        if not isinstance(key, int):
            return gray
        opaque = raw != key
        return gray if opaque.all() else _composite(gray, opaque.astype(np.float32))
    if not img.has_transparency_data:
        return np.asarray(img if img.mode == "L" else img.convert("L"))
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    return _flatten(np.asarray(rgba.convert("L")), np.asarray(rgba.getchannel("A")))


def _flatten(levels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """(H, W) uint8 levels and alpha -> uint8 levels when opaque, else composited float32."""
    if alpha is None or alpha.min() == 255:  # a canvas export: every pixel opaque
        return levels
    return _composite(_unit(levels), _unit(alpha))


def _check_bytes(data: bytes) -> None:
    """Bytes, and some of them: what either decoder can be handed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise NotAnImage(f"the upload is empty; expected {EXPECTED}")


def _open(data: bytes) -> Image.Image:
    """Identify the image from its header only; no pixel is decoded yet."""
    try:
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # warning: -W error
        raise ImageTooLarge(f"the image is too large to decode safely ({e})") from e
    except _DECODE_ERRORS as e:
        raise NotAnImage(f"the data is not {EXPECTED}") from e


def _check_format(img: Image.Image) -> None:
    """Refuse formats Pillow reads but we never meant to accept (less parser surface)."""
    if img.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageType(
            f"{img.format or 'this'} images are not supported; expected {EXPECTED}"
        )


def _check_size(size: tuple[int, int], max_side: int, max_pixels: int) -> None:
    """Refuse from the header's claimed size, before any memory is spent on pixels."""
    width, height = size
    if width > max_side or height > max_side:
        raise ImageTooLarge(
            f"the image is {width}x{height} pixels; expected at most {max_side} on each side"
        )
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image has {width * height} pixels ({width}x{height}); "
            f"expected at most {max_pixels}"
        )


def _load(img: Image.Image) -> Image.Image:
    """Decode the pixels (first frame only); truncation surfaces here, not at open."""
    try:
        img.load()
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"the image is too large to decode safely ({e})") from e
    except _DECODE_ERRORS as e:
        raise NotAnImage(
            f"the {img.format} image is truncated or corrupt ({e}); expected a complete file"
        ) from e
    return img


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation a phone camera records instead of rotating the pixels."""
    with contextlib.suppress(*_DECODE_ERRORS):  # unreadable EXIF: keep the stored orientation
        ImageOps.exif_transpose(img, in_place=True)  # no copy of an upright image
    return img


def _unit(levels: np.ndarray) -> np.ndarray:
    """8-bit levels as float32 in [0, 1]: the same values as UNIT[levels]."""
    unit = levels.astype(np.float32)  # then scale in place: mixed-type ufuncs crawl
    unit *= np.float32(1 / 255)
    return unit


def _scale_wide(raw: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float pixels -> [0, 1]; I and F carry no fixed range, so infer it."""
    values = np.nan_to_num(raw.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    values = np.maximum(values, 0.0)
    if mode.startswith("I;16"):
        full_scale = 65535.0
    else:
        peak = float(values.max(initial=0.0))
        full_scale = next((s for s in (1.0, 255.0, 65535.0) if peak <= s), peak)
    scaled: np.ndarray = np.minimum(values / full_scale, 1.0).astype(np.float32)
    return scaled


def _composite(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten transparency onto a background that keeps the visible strokes visible."""
    opaque = alpha > 0.5
    if opaque.mean() < 0.5:
        # Sparse opaque pixels are strokes on a transparent canvas: contrast with them.
        weight = float(alpha.sum())
        stroke = float((gray * alpha).sum()) / weight if weight > 0 else 1.0
        background = 1.0 if stroke < 0.5 else 0.0
    else:
        # A mostly opaque picture carries its own background: extend it into the holes.
        background = float(np.median(gray[opaque]))
    flat = gray - np.float32(background)  # gray * alpha + background * (1 - alpha), in place
    flat *= alpha
    flat += np.float32(background)
    return flat
