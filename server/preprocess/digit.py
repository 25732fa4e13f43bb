"""MNIST's geometry: the ink's box, its longer side scaled to 20 px, its centre of mass moved
to the centre of a 28x28 field by a whole-pixel shift."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from server.preprocess.errors import NO_DIGIT, NoDigitFound

MNIST_SIDE = 28  # the field MNIST digits live in
DIGIT_SIDE = 20  # MNIST scaled each digit so its longer side fills a 20x20 box


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
