"""The pipeline written plainly, as an independent check: every step a float pass over the
whole image, medians by np.median, the speck filter by shifted masks.

server/preprocess gets the same bits a faster way (histograms of levels, the ink's box alone);
tests/preprocess/test_digit_from_gray.py holds it to these, digit and error alike. Only the
constants and the error types come from the server.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from server import preprocess
from server.preprocess import NO_DIGIT, NoDigitFound

UNIT = np.arange(256, dtype=np.float32) * np.float32(1 / 255)  # level k -> k / 255 in float32


def digit_from_gray(gray: np.ndarray) -> np.ndarray:
    """(H, W) uint8 levels or float gray -> the (28, 28) digit: the five steps in a row."""
    return center_by_mass(fit_box(crop_to_ink(suppress_noise(to_ink(gray)))))


def as_float(gray: np.ndarray) -> np.ndarray:
    """Levels k -> k / 255 (float32); any other gray as float32."""
    gray = np.asarray(gray)
    return UNIT[gray] if gray.dtype == np.uint8 else gray.astype(np.float32)


def frame(image: np.ndarray) -> np.ndarray:
    """The outer 5% of each side (at least a pixel), by a mask; the whole image when small."""
    h, w = image.shape
    k = max(1, round(min(h, w) * preprocess.BORDER_FRACTION))
    if 2 * k >= min(h, w):
        return image.ravel()
    inner = np.zeros(image.shape, dtype=bool)
    inner[k:-k, k:-k] = True
    return image[~inner]


def to_ink(gray: np.ndarray) -> np.ndarray:
    """Ink high: inverted when the darkest mark departs further from the frame's median than
    the lightest does; when neither decides, a light frame means paper."""
    gray = as_float(gray)
    background = float(np.median(frame(gray)))
    darker = background - float(gray.min())
    lighter = float(gray.max()) - background
    if abs(darker - lighter) >= preprocess.POLARITY_MARGIN:
        invert = darker > lighter
    else:
        invert = background >= 0.5
    return np.subtract(1.0, gray, dtype=np.float32) if invert else gray


def suppress_noise(ink: np.ndarray) -> np.ndarray:
    """Ink above the frame's level plus six robust sigmas (or 20% of the peak), lone specks
    dropped, the strongest scaled to 1; all zeros when nothing stands out."""
    border = frame(ink)
    level = float(np.median(border))
    noise = preprocess.MAD_TO_SIGMA * float(np.median(np.abs(border - level)))
    peak = float(ink.max()) - level
    threshold = max(preprocess.NOISE_SIGMAS * noise, preprocess.RELATIVE_FLOOR * peak)
    if peak < preprocess.MIN_CONTRAST or peak <= threshold:
        return np.zeros_like(ink)
    cleaned = np.maximum(ink - np.float32(level + threshold), np.float32(0))
    cleaned *= has_neighbour(cleaned > 0)
    strongest = float(cleaned.max())
    if strongest <= 0.0:
        return np.zeros_like(ink)
    cleaned /= np.float32(strongest)
    return cleaned


def has_neighbour(marked: np.ndarray) -> np.ndarray:
    """(h, w) bool: whether any of a pixel's 8 neighbours is marked, one shift at a time."""
    h, w = marked.shape
    padded = np.pad(marked, 1)
    found = np.zeros((h, w), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy, dx) != (0, 0):
                found |= padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    return found


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    inked = ink > 0
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise NoDigitFound(NO_DIGIT)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_box(ink: np.ndarray, size: int = preprocess.DIGIT_SIDE) -> np.ndarray:
    h, w = ink.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    source = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))
    box = np.asarray(source.resize((new_w, new_h), resample), dtype=np.float32)
    box = np.clip(box, 0.0, 1.0)
    peak = float(box.max())
    if peak <= 0.0:
        raise NoDigitFound("no digit found in the image; the ink vanished when scaled")
    return box / peak


def center_by_mass(box: np.ndarray, size: int = preprocess.MNIST_SIDE) -> np.ndarray:
    h, w = box.shape
    if h > size or w > size:
        raise ValueError(f"the digit box is {h}x{w} pixels; expected at most {size}x{size}")
    total = float(box.sum())
    if total <= 0.0:
        raise NoDigitFound("no digit found in the image; the digit box is empty")
    centre = (size - 1) / 2
    cy = float(box.sum(axis=1) @ np.arange(h)) / total
    cx = float(box.sum(axis=0) @ np.arange(w)) / total
    top = min(max(math.floor(centre - cy + 0.5), 0), size - h)
    left = min(max(math.floor(centre - cx + 0.5), 0), size - w)
    field = np.zeros((size, size), dtype=np.float32)
    field[top : top + h, left : left + w] = box
    return field
