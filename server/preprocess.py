"""Uploaded image of a handwritten digit -> the 28x28 array an MNIST-trained network expects.

This is the only module that knows MNIST's conventions: white ink (1.0) on black (0.0), the
digit's longer side scaled to 20 px with anti-aliasing, its centre of mass moved to the centre
of a 28x28 field by an integer shift. It knows nothing of HTTP: every failure is a typed
`PreprocessError` (a `ValueError`) whose message is meant for the person who sent the image.

Nothing here mutates module globals (Pillow's or ours), so it is safe to call from threads.
"""

from __future__ import annotations

import contextlib
import io
import struct

import numpy as np
from PIL import Image, ImageOps

MNIST_SIDE = 28  # the field MNIST digits live in
DIGIT_SIDE = 20  # MNIST scaled each digit so its longer side fills a 20x20 box
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

BORDER_FRACTION = 0.05  # the outer frame that shows the paper or canvas, per side
POLARITY_MARGIN = 0.1  # below this difference the darker/lighter extremes do not decide
MIN_CONTRAST = 0.15  # ink must stand out this much from the background to be a digit at all
NOISE_SIGMAS = 6.0  # a gaussian's maximum over 16 M pixels is about 5.6 sigma
RELATIVE_FLOOR = 0.2  # faint shadows and JPEG ringing under 20% of the peak ink are dropped
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation for gaussian noise


class PreprocessError(ValueError):
    """Base class: the upload cannot be turned into an MNIST digit (a client error)."""


class NotAnImage(PreprocessError):  # noqa: N818 (the API's names)
    """The bytes are not a decodable image, or the image is truncated or corrupt."""


class UnsupportedImageType(PreprocessError):  # noqa: N818 (the API's names)
    """An image Pillow can read, but of a format (TIFF, ICO, ...) we do not accept."""


class ImageTooLarge(PreprocessError):  # noqa: N818 (the API's names)
    """The image is larger than allowed, judged from its header before decoding."""


class NoDigitFound(PreprocessError):  # noqa: N818 (the API's names)
    """The image decodes fine but holds nothing that stands out from its background."""


def to_mnist(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Run the whole pipeline: uploaded bytes -> (28, 28) float32, white ink on black."""
    return digit_from_gray(decode_image(data, max_pixels=max_pixels))


def digit_from_gray(gray: np.ndarray) -> np.ndarray:
    """Decoded (H, W) gray -> (28, 28) MNIST-style digit; apart so callers can time decoding."""
    ink = suppress_noise(to_ink(gray))
    return center_by_mass(fit_box(crop_to_ink(ink)))


# --- 1. decoding ---------------------------------------------------------------------------


def decode_image(
    data: bytes, max_side: int = MAX_SIDE, *, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode an upload to upright (H, W) float32 gray in [0, 1], refusing bombs before decoding."""
    with _open(data) as img:
        _check_format(img)
        _check_size(img.size, max_side, max_pixels)
        return image_to_gray(_upright(_load(img)))


def image_to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W) float32 in [0, 1], so later steps see one kind of array."""
    gray, alpha = _gray_and_alpha(img)
    if alpha is None or alpha.min() >= 1.0:
        return gray
    return _composite(gray, alpha)


def _open(data: bytes) -> Image.Image:
    """Identify the image from its header only; no pixel is decoded yet."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise NotAnImage(f"the upload is empty; expected {EXPECTED}")
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


def _gray_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Split into (H, W) gray and (H, W) alpha (None when the image is opaque), both [0, 1]."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        raw = np.asarray(img)
        key = img.info.get("transparency")
        alpha = (raw != key).astype(np.float32) if isinstance(key, int) else None
        return _scale_wide(raw, img.mode), alpha
    if img.has_transparency_data:
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        return _unit(rgba.convert("L")), _unit(rgba.getchannel("A"))
    return _unit(img.convert("L")), None


def _unit(channel: Image.Image) -> np.ndarray:
    """An 8-bit channel as (H, W) float32 in [0, 1]."""
    unit = np.asarray(channel).astype(np.float32)  # then scale in place: mixed-type ufuncs crawl
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


# --- 2-3. ink map --------------------------------------------------------------------------


def _frame(image: np.ndarray) -> np.ndarray:
    """The outer frame's pixels as 1-D: it shows the paper or canvas, rarely the digit."""
    h, w = image.shape
    k = max(1, round(min(h, w) * BORDER_FRACTION))
    if 2 * k >= min(h, w):
        return image.ravel()
    sides = (
        image[:k].ravel(),
        image[-k:].ravel(),
        image[k:-k, :k].ravel(),
        image[k:-k, -k:].ravel(),
    )
    return np.concatenate(sides)  # the same pixels as a mask would pick, in another order


def to_ink(gray: np.ndarray) -> np.ndarray:
    """Make ink high whatever the polarity: dark pen on paper is inverted, chalk-on-board kept."""
    gray = np.asarray(gray, dtype=np.float32)
    background = float(np.median(_frame(gray)))
    darker = background - float(gray.min())  # how far the darkest mark departs from the paper
    lighter = float(gray.max()) - background
    # When nothing stands out either way, a light frame means paper.
    decisive = abs(darker - lighter) >= POLARITY_MARGIN
    invert = darker > lighter if decisive else background >= 0.5
    return np.subtract(1.0, gray, dtype=np.float32) if invert else gray


def suppress_noise(ink: np.ndarray) -> np.ndarray:
    """Drop background, paper texture, JPEG noise and faint shadows; scale the peak ink to 1."""
    ink = np.asarray(ink, dtype=np.float32)
    frame = _frame(ink)
    level = float(np.median(frame))
    noise = MAD_TO_SIGMA * float(np.median(np.abs(frame - level)))
    peak = float(ink.max()) - level
    threshold = max(NOISE_SIGMAS * noise, RELATIVE_FLOOR * peak)
    if peak < MIN_CONTRAST or peak <= threshold:
        return np.zeros_like(ink)
    cleaned = ink - np.float32(level + threshold)  # what stands out above background and noise
    np.maximum(cleaned, 0.0, out=cleaned)
    cleaned = _drop_isolated(cleaned)
    strongest = float(cleaned.max())
    if strongest <= 0.0:
        return np.zeros_like(ink)
    cleaned /= np.float32(strongest)  # x / x is exactly 1; x * (1 / x) may not be
    return cleaned


def _drop_isolated(ink: np.ndarray) -> np.ndarray:
    """Zero, in place, lone pixels with no inked neighbour: a speck would stretch the bbox."""
    h, w = ink.shape
    marked = np.zeros((h + 2, w + 2), dtype=bool)  # ink > 0, in a frame of False
    np.greater(ink, 0, out=marked[1:-1, 1:-1])
    has_neighbour = np.zeros((h, w), dtype=bool)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        has_neighbour |= marked[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    ink *= has_neighbour  # pixels without ink and without neighbours stay 0 either way
    return ink


# --- 4-6. MNIST geometry -------------------------------------------------------------------


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Cut to the ink's bounding box, as MNIST did before scaling; no ink means no digit."""
    rows = np.flatnonzero((ink > 0).any(axis=1))
    cols = np.flatnonzero((ink > 0).any(axis=0))
    if rows.size == 0:
        raise NoDigitFound(
            "no digit found in the image; expected a digit clearly darker or lighter "
            "than its background"
        )
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (H, W) -> (h, w)


def fit_box(ink: np.ndarray, size: int = DIGIT_SIDE) -> np.ndarray:
    """Scale so the longer side is `size` px, aspect kept and anti-aliased, like MNIST's 20 px."""
    h, w = ink.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))  # a "1" may be 1 px wide
    # BOX averages exactly the source area each pixel covers; LANCZOS interpolates when growing.
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    source = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))  # mode "F"
    box = np.asarray(source.resize((new_w, new_h), resample), dtype=np.float32)  # -> (new_h, new_w)
    box = np.clip(box, 0.0, 1.0)
    peak = float(box.max())
    if peak <= 0.0:
        raise NoDigitFound("no digit found in the image; the ink vanished when scaled")
    return box / peak  # thin strokes thin out when averaged down; keep the strongest at 1.0


def center_by_mass(box: np.ndarray, size: int = MNIST_SIDE) -> np.ndarray:
    """Paste into a size x size field, shifted by whole pixels so the centre of mass is central."""
    h, w = box.shape
    if h > size or w > size:
        raise ValueError(f"the digit box is {h}x{w} pixels; expected at most {size}x{size}")
    total = float(box.sum())
    if total <= 0.0:
        raise NoDigitFound("no digit found in the image; the digit box is empty")
    centre = (size - 1) / 2  # 13.5: the field's middle in pixel-centre coordinates
    cy = float(box.sum(axis=1) @ np.arange(h)) / total
    cx = float(box.sum(axis=0) @ np.arange(w)) / total
    top = int(np.clip(np.floor(centre - cy + 0.5), 0, size - h))  # stay inside the frame
    left = int(np.clip(np.floor(centre - cx + 0.5), 0, size - w))
    field = np.zeros((size, size), dtype=np.float32)
    field[top : top + h, left : left + w] = box  # (h, w) -> (size, size)
    return field
