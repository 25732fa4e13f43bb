"""Uploaded image of a handwritten digit -> the 28x28 array an MNIST-trained network expects.

This is the only module that knows MNIST's conventions: white ink (1.0) on black (0.0), the
digit's longer side scaled to 20 px with anti-aliasing, its centre of mass moved to the centre
of a 28x28 field by an integer shift. It knows nothing of HTTP: every failure is a typed
`PreprocessError` (a `ValueError`) whose message is meant for the person who sent the image.

Each step also exists on its own, on whole images (`to_ink`, `suppress_noise`, `crop_to_ink`,
...). `digit_from_gray` gives the same result without their full-frame float passes: it decides
polarity and the noise cut from the frame's histogram and the image's extremes, finds the ink's
box (a search of the rows' bytes for 8-bit levels, row and column extremes for floats), and makes
floats of that box alone.

Nothing here mutates module globals (Pillow's or ours), so it is safe to call from threads.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps

from server.preprocess import png

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

# 8-bit level k -> gray in [0, 1] and its inverse, computed as the float steps compute them
UNIT = np.arange(256, dtype=np.float32) * np.float32(1 / 255)
INVERTED = np.subtract(1.0, UNIT, dtype=np.float32)
UNIT.flags.writeable = INVERTED.flags.writeable = False  # shared by every thread


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
    return digit_from_gray(decode(data, max_pixels=max_pixels))


def digit_from_gray(gray: np.ndarray) -> np.ndarray:
    """Decoded (H, W) gray -> (28, 28) MNIST-style digit; apart so callers can time decoding.

    The same as center_by_mass(fit_box(crop_to_ink(suppress_noise(to_ink(gray))))), but only
    the box holding the ink is ever made float (gray: uint8 levels or float32 in [0, 1]).
    """
    gray = _as_gray(gray)
    frame = Frame(gray)
    darkest, lightest = gray.min(), gray.max()
    invert = frame.inverted(_ink_value(darkest, False), _ink_value(lightest, False))
    cut = frame.ink_cut(invert, _ink_value(darkest if invert else lightest, invert))
    if cut is None:
        raise NoDigitFound(NO_DIGIT)
    if gray.dtype == np.uint8:
        return center_by_mass(fit_box(_levels_ink(gray, invert, cut)))
    # A pixel is ink when ink > cut; a column or row holds ink when its strongest pixel does.
    extreme = np.min if invert else np.max
    cols = _span(_ink(extreme(gray, axis=0), invert) > cut)
    if cols is None:
        raise NoDigitFound(NO_DIGIT)
    band = gray[:, cols[0] : cols[1]]  # (H, W) -> (H, w): rows need looking at only here
    rows = _span(_ink(extreme(band, axis=1), invert) > cut)
    assert rows is not None, "a column holds ink, so a row does"
    box = band[rows[0] : rows[1]]  # (H, w) -> (h, w), the ink's bounding box
    # The speck filter sees every neighbour it would see on the whole image: outside the box
    # nothing is ink. So the result equals the full-frame steps' result, bit for bit.
    return center_by_mass(fit_box(crop_to_ink(_clean(_ink(box, invert), cut))))


# --- 1. decoding ---------------------------------------------------------------------------


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


# --- 2-3. ink map --------------------------------------------------------------------------

NO_DIGIT = (
    "no digit found in the image; expected a digit clearly darker or lighter than its background"
)


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


def _as_gray(gray: np.ndarray) -> np.ndarray:
    """uint8 levels stay; any other gray becomes float32, as every float step computes in it."""
    gray = np.asarray(gray)
    return gray if gray.dtype == np.uint8 else gray.astype(np.float32, copy=False)


def _same(values: np.ndarray) -> np.ndarray:
    return values


def _ink(gray: np.ndarray, invert: bool) -> np.ndarray:
    """Gray (uint8 levels or float in [0, 1]) -> float32 ink: 1 - gray when inverted."""
    if gray.dtype == np.uint8:  # UNIT[gray] or INVERTED[gray], in 2-3 passes instead of a gather
        ink = _unit(gray)
        return np.subtract(1.0, ink, out=ink) if invert else ink
    gray = np.asarray(gray, dtype=np.float32)
    return np.subtract(1.0, gray, dtype=np.float32) if invert else gray


def _ink_value(pixel: np.generic, invert: bool) -> float:
    """One pixel's ink, rounded as the ink map rounds it (no array for one number); not
    inverted, that is its gray value in [0, 1]."""
    if pixel.dtype == np.uint8:
        return float((INVERTED if invert else UNIT)[int(pixel)])
    return float(np.subtract(1.0, pixel, dtype=np.float32)) if invert else float(pixel)


def _span(mask: np.ndarray) -> tuple[int, int] | None:
    """[first, last + 1) of the True entries of a 1-D mask; None when there are none."""
    where = np.flatnonzero(mask)
    return (int(where[0]), int(where[-1]) + 1) if where.size else None


def _middle_mean(low: float, high: float) -> float:
    """What np.median returns for the two middle values: their float32 sum, halved."""
    return float((np.float32(low) + np.float32(high)) / np.float32(2))


def _row_span(mask: np.ndarray) -> tuple[int, int] | None:
    """[first, last + 1) of the rows of an (H, W) mask that hold a True; None when none do.

    A bool is the byte 0 or 1, so the first and last True are a memchr away in the mask's
    bytes (row after row): two searches that stop early, instead of a reduction of each row.
    """
    data = mask.tobytes()
    first = data.find(1)
    if first < 0:
        return None
    w = mask.shape[1]
    return first // w, data.rfind(1) // w + 1


def _levels_above(gray: np.ndarray, invert: bool, cut: np.float32) -> np.ndarray:
    """Where ink > cut in (H, W) uint8 levels, by one comparison of levels instead of floats.

    UNIT rises and INVERTED falls strictly, so the levels whose ink exceeds cut are the n
    lightest (or, inverted, the n darkest) of the 256.
    """
    n = int(np.count_nonzero((INVERTED if invert else UNIT) > cut))
    if n == 0:
        return np.zeros(gray.shape, dtype=bool)
    return np.less_equal(gray, n - 1) if invert else np.greater_equal(gray, 256 - n)


def _levels_ink(gray: np.ndarray, invert: bool, cut: np.float32) -> np.ndarray:
    """crop_to_ink(_clean(_ink(gray, invert), cut)) for uint8 levels: the same bits, but one
    pass of levels finds the ink and its box, and only the box is made float."""
    above = _levels_above(gray, invert, cut)  # (H, W) bool, a new array
    rows = _row_span(above)
    if rows is None:
        raise NoDigitFound(NO_DIGIT)
    cols = _span(np.asarray(above[rows[0] : rows[1]].any(axis=0)))
    assert cols is not None, "a row holds ink, so a column does"
    box = slice(*rows), slice(*cols)  # (H, W) -> (h, w): every edge row and column holds ink
    cleaned = _ink(gray[box], invert)  # a new float32 array, so in place from here
    cleaned -= cut  # what stands out above background and noise, as _clean computes it
    np.maximum(cleaned, 0.0, out=cleaned)  # > 0 exactly where above (IEEE: a - b > 0 iff a > b)
    lone = _lone(above[box])
    if lone is not None:  # specks dropped: the box may shrink, so crop as the full-frame step
        cleaned[lone] = 0.0
        return crop_to_ink(_to_peak(cleaned))
    # Every ink pixel is kept and stays > 0 when scaled by 1 / peak, a peak in (0, 1]: the
    # box's edges hold ink, so crop_to_ink would return the box itself.
    return _to_peak(cleaned)


class Frame:
    """The frame's pixels in the form their medians are cheapest from: one level when the
    frame is uniform (a canvas), else a histogram of the 256 levels for uint8 gray
    (np.bincount), the pixels themselves for float gray.

    `median(f)` is np.median of f applied to every frame pixel's float gray, where f is
    elementwise and float32; for levels it is applied to the 256 level values only.
    """

    def __init__(self, gray: np.ndarray) -> None:
        pixels = _frame(gray)
        self.level: int | None = None  # the frame's one level, when it has only one
        self.counts: np.ndarray | None = None
        self.pixels: np.ndarray | None = None
        if gray.dtype != np.uint8:
            self.pixels = np.asarray(pixels, dtype=np.float32)
        elif pixels.size and pixels.min() == pixels.max():
            self.level = int(pixels[0])
        else:
            self.counts = np.bincount(pixels, minlength=256)

    def median(self, f: Callable[[np.ndarray], np.ndarray] = _same) -> float:
        if self.pixels is not None:
            return float(np.median(f(self.pixels)))
        if self.level is not None:  # every pixel alike: the middle two are one value, x
            return float(f(UNIT[self.level : self.level + 1])[0])  # == (x + x) / 2 exactly
        assert self.counts is not None
        values = f(UNIT)  # (256,) one value per level
        order = np.argsort(values, kind="stable")
        ends = np.cumsum(self.counts[order])  # ends[j]: pixels whose value is <= the j-th
        n = int(ends[-1])
        # positions (n - 1) // 2 and n // 2: the middle pixel twice, or the two middle ones
        low, high = values[order[np.searchsorted(ends, [(n - 1) // 2, n // 2], side="right")]]
        return _middle_mean(low, high)

    def inverted(self, darkest: float, lightest: float) -> bool:
        """Whether ink is dark (pen on paper): the mark that departs further from the frame."""
        background = self.median()
        darker = background - darkest  # how far the darkest mark departs from the paper
        lighter = lightest - background
        # When nothing stands out either way, a light frame means paper.
        decisive = abs(darker - lighter) >= POLARITY_MARGIN
        return darker > lighter if decisive else background >= 0.5

    def ink_cut(self, invert: bool, peak: float) -> np.float32 | None:
        """The ink level under which background, paper grain, JPEG noise and faint shadows lie;
        None when nothing stands out. `peak` is the strongest ink in the image."""
        level = self.median(lambda gray: _ink(gray, invert))
        noise = MAD_TO_SIGMA * self.median(lambda gray: np.abs(_ink(gray, invert) - level))
        peak -= level
        threshold = max(NOISE_SIGMAS * noise, RELATIVE_FLOOR * peak)
        if peak < MIN_CONTRAST or peak <= threshold:
            return None
        return np.float32(level + threshold)


def to_ink(gray: np.ndarray) -> np.ndarray:
    """Make ink high whatever the polarity: dark pen on paper is inverted, chalk-on-board kept."""
    gray = _as_gray(gray)
    invert = Frame(gray).inverted(_ink_value(gray.min(), False), _ink_value(gray.max(), False))
    return _ink(gray, invert)


def suppress_noise(ink: np.ndarray) -> np.ndarray:
    """Drop background, paper texture, JPEG noise and faint shadows; scale the peak ink to 1."""
    ink = np.asarray(ink, dtype=np.float32)
    cut = Frame(ink).ink_cut(False, float(ink.max()))
    return np.zeros_like(ink) if cut is None else _clean(ink, cut)


def _clean(ink: np.ndarray, cut: np.float32) -> np.ndarray:
    """Ink above `cut`, lone specks dropped, the strongest scaled to 1; a new array."""
    cleaned = ink - cut  # what stands out above background and noise
    np.maximum(cleaned, 0.0, out=cleaned)
    return _to_peak(_drop_isolated(cleaned))


def _to_peak(cleaned: np.ndarray) -> np.ndarray:
    """Scale, in place, so the strongest ink is 1; all zeros when no ink is left."""
    strongest = float(cleaned.max())
    if strongest <= 0.0:
        return np.zeros_like(cleaned)
    cleaned /= np.float32(strongest)  # x / x is exactly 1; x * (1 / x) may not be
    return cleaned


def _drop_isolated(ink: np.ndarray) -> np.ndarray:
    """Zero, in place, lone pixels with no inked neighbour: a speck would stretch the bbox."""
    lone = _lone(ink > 0)
    if lone is not None:
        ink[lone] = 0.0
    return ink


def _lone(marked: np.ndarray) -> np.ndarray | None:
    """(h, w) bool -> (h, w) bool: the marked pixels none of whose 8 neighbours is marked;
    None when there are none, as in most drawings.

    Worked on the mask framed in False and flattened, where each neighbour is one fixed
    offset away (the frame's columns keep rows apart), so each step is one 1-D pass.
    """
    h, w = marked.shape
    stride = w + 2
    framed = np.zeros((h + 4, stride), dtype=bool)  # two rows of False above and below
    framed[2 : h + 2, 1 : w + 1] = marked
    flat = framed.ravel()
    beside = flat[:-2] | flat[2:]  # [i]: a left or right neighbour of flat pixel i + 1
    in_row = beside | flat[1:-1]  # [i]: any of the three cells of that row
    start, stop = 2 * stride - 1, (h + 2) * stride - 1  # i of the rows of `marked`
    above, below = in_row[start - stride : stop - stride], in_row[start + stride : stop + stride]
    has_neighbour = above | below  # (h * stride,)
    has_neighbour |= beside[start:stop]
    lone = np.greater(flat[start + 1 : stop + 1], has_neighbour)  # marked and no neighbour
    if not lone[lone.argmax()]:  # argmax stops at the first True
        return None
    return lone.reshape(h, stride)[:, 1 : w + 1]  # (h * stride,) -> (h, w)


# --- 4-6. MNIST geometry -------------------------------------------------------------------


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Cut to the ink's bounding box, as MNIST did before scaling; no ink means no digit."""
    inked = ink > 0
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise NoDigitFound(NO_DIGIT)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (H, W) -> (h, w)


def fit_box(ink: np.ndarray, size: int = DIGIT_SIDE) -> np.ndarray:
    """Scale so the longer side is `size` px, aspect kept and anti-aliased, like MNIST's 20 px."""
    h, w = ink.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))  # a "1" may be 1 px wide
    # BOX averages exactly the source area each pixel covers; LANCZOS interpolates when growing.
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    # Mode "F" is native float32: bytes in and out skip fromarray's and asarray's checks.
    source = Image.frombytes("F", (w, h), np.ascontiguousarray(ink, dtype=np.float32))
    scaled = source.resize((new_w, new_h), resample).tobytes()
    box = np.clip(np.frombuffer(scaled, dtype=np.float32), 0.0, 1.0).reshape(new_h, new_w)
    peak = float(box.max())
    if peak <= 0.0:
        raise NoDigitFound("no digit found in the image; the ink vanished when scaled")
    box /= np.float32(peak)  # thin strokes thin out when averaged down; keep the strongest at 1
    return box


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
    # whole pixels, halves up, staying inside the frame (Python's math: numpy's costs us per call)
    top = min(max(math.floor(centre - cy + 0.5), 0), size - h)
    left = min(max(math.floor(centre - cx + 0.5), 0), size - w)
    field = np.zeros((size, size), dtype=np.float32)
    field[top : top + h, left : left + w] = box  # (h, w) -> (size, size)
    return field
