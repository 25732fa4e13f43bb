"""Strokes or glyph images -> an upload as a person sends it -> the API's 28x28 input.

An upload here is a PNG of random size, with the digit at a random size and place, dark on
light or light on dark, and it goes through the API's own path (`server.preprocess.decode`,
then `digit_from_gray`), so what a model is measured on is what it would see from a user.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from server.preprocess import decode, digit_from_gray

SUPERSAMPLE = 4  # strokes are drawn this much larger, then averaged down: anti-aliased edges


def ink_from_strokes(
    strokes: Sequence[np.ndarray], height: int, pen: float, *, antialias: bool = True
) -> np.ndarray:
    """Draw strokes with a round pen: (H, W) float32 ink in [0, 1] holding the glyph, 1 = ink.

    `height` is the glyph's height in pixels, `pen` the pen's width as a fraction of it.
    """
    points = np.concatenate(strokes)  # (P_total, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = max(float(high[1] - low[1]), 1e-6)  # the glyph's height, in stroke units
    scale = height / extent
    radius = max(0.5, pen * height / 2)
    margin = radius + 2
    k = SUPERSAMPLE if antialias else 1
    width = int(np.ceil((high[0] - low[0]) * scale + 2 * margin))
    size = (width * k, int(np.ceil(height + 2 * margin)) * k)
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    r = radius * k
    for stroke in strokes:
        xy = (stroke - low) * scale * k + margin * k  # (P, 2) in canvas pixels
        flat = [(float(x), float(y)) for x, y in xy]
        if len(flat) > 1:
            draw.line(flat, fill=255, width=max(1, round(2 * r)), joint="curve")
        for x, y in (flat[0], flat[-1]):  # round caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    if k > 1:
        canvas = canvas.resize((size[0] // k, size[1] // k), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def blocky(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thick, binarised, pixelated strokes: thresholded at low resolution, enlarged by repeats."""
    h, w = ink.shape
    cell = int(rng.integers(2, 5))  # each low-resolution pixel becomes cell x cell
    small = Image.fromarray((ink * 255).astype(np.uint8)).resize(
        (max(1, w // cell), max(1, h // cell)), Image.Resampling.BOX
    )
    binary = (np.asarray(small, dtype=np.float32) / 255.0 > 0.35).astype(np.float32)
    return np.kron(binary, np.ones((cell, cell), dtype=np.float32))  # (h//c*c, w//c*c)


def placed(
    ink: np.ndarray, rng: np.random.Generator, fill: tuple[float, float]
) -> tuple[np.ndarray, int]:
    """The ink at a random place on a blank page of random size: its coverage (H, W) in
    [0, 1] and the row of the ink's top. `fill`: the range of the page's height it takes."""
    h, w = ink.shape
    share = rng.uniform(*fill)
    page_h = int(np.clip(h / share, h + 4, 4096))
    page_w = int(np.clip(page_h * rng.uniform(0.7, 1.5), w + 4, 4096))
    top = int(rng.integers(0, page_h - h + 1))
    left = int(rng.integers(0, page_w - w + 1))
    coverage = np.zeros((page_h, page_w), dtype=np.float32)
    coverage[top : top + h, left : left + w] = ink
    return coverage, top


def page(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Place an ink map on a page of random size and polarity: (H, W) uint8 gray levels."""
    coverage, _ = placed(ink, rng, (0.35, 0.85))
    paper, pen = rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.3)  # dark ink on light paper
    if rng.random() < 0.5:
        paper, pen = 1.0 - paper, 1.0 - pen  # or light ink on a dark screen
    gray = paper + (pen - paper) * coverage
    gray += rng.normal(0.0, rng.uniform(0.0, 0.02), gray.shape).astype(np.float32)
    return np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)


def png(levels: np.ndarray) -> bytes:
    """A gray page as the PNG file a user would upload."""
    buffer = io.BytesIO()
    Image.fromarray(levels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def through_api(data: bytes) -> np.ndarray:
    """The 28x28 float32 input the API would build from these upload bytes."""
    return digit_from_gray(decode(data))


def digit_input(levels: np.ndarray, *, via_png: bool = True) -> np.ndarray:
    """A page's 28x28 input: through a PNG file and the API's decoder, or straight from the
    levels, which gives the same input (PNG is lossless) without the file."""
    return through_api(png(levels)) if via_png else digit_from_gray(levels)
