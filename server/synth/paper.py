"""Pens and paper the stroke family lacks: pressure, dry skips, pencil grain, photographed pages.

`pen_ink` draws strokes as a hand does: the line swells and thins with pressure (or with a
nib's angle), tapers where the pen lands and lifts, and skips where a dry ballpoint lets go.
`pencil` gives it a pencil's grain and lighter gray; a marker keeps nearly one width.
`photographed_page` puts it on paper as a phone or scanner sees it: uneven light, faint ruled
lines or squares, a little blur and noise, all kept under what the API's ink rule
(server.preprocess.ink: 20% of the ink's contrast) discards, as real faint rulings mostly are.
`low_res_scan` digitises it as postal collections were: a digit 16-20 pixels high, sometimes
thresholded, sent to the API as that small image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from server.synth.render import SUPERSAMPLE, placed


def pen_ink(
    strokes: Sequence[np.ndarray],
    height: int,
    pen: float,
    rng: np.random.Generator,
    *,
    marker: bool = False,
) -> np.ndarray:
    """Draw strokes with a pen whose width varies: (H, W) float32 ink in [0, 1], 1 = ink.

    `height` is the glyph's height in pixels, `pen` the pen's widest as a fraction of it. A
    `marker` keeps nearly its width: a felt marker has no nib and little pressure to vary.
    """
    points = np.concatenate(strokes)  # (P_total, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = height / max(float(high[1] - low[1]), 1e-6)  # pixels per stroke unit
    k = SUPERSAMPLE
    radius = max(0.6, pen * height / 2) * k  # the widest, in canvas pixels
    margin = radius + 2 * k
    size = (
        int(np.ceil((high[0] - low[0]) * scale * k + 2 * margin)),
        int(np.ceil(height * k + 2 * margin)),
    )
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    nib = rng.uniform(0, np.pi) if rng.random() < 0.35 else None  # a broad nib: thick-thin
    wobble = rng.uniform(0.1, 0.45)  # how much the pressure swells and eases
    if marker:
        nib, wobble = None, wobble / 4
    skips = int(rng.choice([0, 0, 1, 2, 3]))  # dry-pen gaps in the whole glyph
    for stroke in strokes:
        xy = _resampled((stroke - low) * scale * k + margin, step=max(0.5, radius / 3))
        width = _pressure(xy, radius, nib, wobble, rng)  # (Q,) radius per point
        keep = _dry_skips(len(xy), skips, height * k / max(0.5, radius / 3), rng)
        for (x, y), w in zip(xy[keep], width[keep], strict=True):
            draw.ellipse((x - w, y - w, x + w, y + w), fill=255)
    canvas = canvas.resize((size[0] // k, size[1] // k), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _resampled(xy: np.ndarray, step: float) -> np.ndarray:
    """(P, 2) -> (Q, 2) points `step` apart along the stroke, so every dab overlaps the next."""
    seg = np.hypot(*np.diff(xy, axis=0).T)  # (P-1,)
    along = np.concatenate([[0.0], np.cumsum(seg)])  # (P,) arc length
    at = np.linspace(0.0, along[-1], max(2, int(along[-1] / step) + 1))  # (Q,)
    return np.stack([np.interp(at, along, xy[:, 0]), np.interp(at, along, xy[:, 1])], axis=1)


def _pressure(
    xy: np.ndarray, radius: float, nib: float | None, wobble: float, rng: np.random.Generator
) -> np.ndarray:
    """(Q, 2) -> (Q,) the pen's radius at each point: slow swells, tapered ends, a nib's angle."""
    q = len(xy)
    t = np.linspace(0.0, 1.0, q)
    swell = 1.0 - wobble * (
        0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2.5) * t + rng.uniform(0, 6.3))
    )
    ends = np.minimum(t, 1.0 - t) * q  # points to the nearer end
    taper = np.clip(0.45 + 0.55 * ends / max(1.0, 0.08 * q), 0.0, 1.0)
    width = radius * swell * taper
    if nib is not None:
        heading = np.arctan2(*np.gradient(xy, axis=0)[:, ::-1].T)  # (Q,) direction of travel
        width *= 0.35 + 0.65 * np.abs(np.sin(heading - nib))
    return np.maximum(width, 0.5)


def _dry_skips(q: int, skips: int, per_height: float, rng: np.random.Generator) -> np.ndarray:
    """(Q,) bool: False where a dry pen leaves a short gap (3-6% of the glyph's height)."""
    keep = np.ones(q, dtype=bool)
    for _ in range(skips):
        if rng.random() < 0.5:  # a glyph's skips fall on its strokes about half the time each
            continue
        length = int(rng.uniform(0.03, 0.06) * per_height)
        if q > 3 * length + 2:
            start = int(rng.integers(length, q - 2 * length))
            keep[start : start + length] = False
    return keep


def pencil(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Graphite on paper grain: the ink broken up pixel by pixel, (H, W) -> (H, W)."""
    grain = rng.uniform(0.35, 1.0, ink.shape).astype(np.float32)
    return ink * grain


def low_res_scan(
    ink: np.ndarray, rng: np.random.Generator, *, threshold: bool = True
) -> np.ndarray:
    """A page scanned at low resolution, as the USPS and other postal sets were: the digit's box
    averaged down to 16-20 px high, in 2 of 5 thresholded to black and white (when `threshold`;
    a pencil's grain or a hairline would break up),
    on a small page of a few pixels' margin: (h, w) uint8 gray levels, dark on light, and that
    small image is what the API gets."""
    h, w = ink.shape
    side = int(rng.integers(16, 21))  # the box's height in scan pixels
    scale = side / h
    small_w = max(2, round(w * scale))
    small = Image.fromarray(np.clip(np.rint(ink * 255), 0, 255).astype(np.uint8)).resize(
        (small_w, side), Image.Resampling.BOX
    )
    coverage = np.asarray(small, dtype=np.float32) / 255.0  # (side, small_w)
    if rng.random() < 0.4 and threshold:
        coverage = (coverage > rng.uniform(0.25, 0.45)).astype(np.float32)
    top, bottom, left, right = (int(m) for m in rng.integers(1, 6, 4))
    sheet = np.zeros((side + top + bottom, small_w + left + right), dtype=np.float32)
    sheet[top : top + side, left : left + small_w] = coverage
    paper, pen = rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.25)
    gray = paper + (pen - paper) * sheet
    gray += rng.normal(0.0, rng.uniform(0.0, 0.02), gray.shape).astype(np.float32)
    return np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)


def photographed_page(
    ink: np.ndarray, rng: np.random.Generator, *, pen: float = 0.15
) -> np.ndarray:
    """Place an ink map on paper as photographed or scanned: (H, W) uint8 gray levels.

    `pen` is the ink's gray (0 black); paper is 0.8-0.97 with light falling off across it.
    """
    h = ink.shape[0]
    coverage, top = placed(ink, rng, (0.3, 0.75))
    page_h, page_w = coverage.shape
    paper = rng.uniform(0.8, 0.97)
    contrast = paper - pen  # how far the ink is from the paper
    yy, xx = np.mgrid[0:page_h, 0:page_w].astype(np.float32)  # (H, W) each
    yy, xx = yy / page_h - 0.5, xx / page_w - 0.5
    tilt = rng.uniform(0, 2 * np.pi)
    light = (np.cos(tilt) * xx + np.sin(tilt) * yy) * rng.uniform(0.0, 0.1) * contrast
    light -= (xx**2 + yy**2) * rng.uniform(0.0, 0.1) * contrast  # darker towards the corners
    sheet = paper + light - _rulings(page_h, page_w, top + h, h, rng) * contrast
    gray = sheet - (sheet - pen) * coverage
    blurred = Image.fromarray(np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0) * max(1.0, h / 80))
    )
    gray = np.asarray(blurred, dtype=np.float32) / 255.0
    gray += rng.normal(0.0, rng.uniform(0.003, 0.015), gray.shape).astype(np.float32)
    return np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)


def _rulings(
    page_h: int, page_w: int, baseline: int, h: int, rng: np.random.Generator
) -> np.ndarray:
    """(H, W) darkening, as a fraction of the ink's contrast: ruled lines, squares, or none."""
    kind = rng.choice(["plain", "ruled", "squares"], p=[0.4, 0.35, 0.25])
    marks = np.zeros((page_h, page_w), dtype=np.float32)
    if kind == "plain":
        return marks
    strength = rng.uniform(0.04, 0.12)
    thick = max(1, round(h / 60))
    spacing = h * (rng.uniform(1.1, 1.5) if kind == "ruled" else rng.uniform(0.5, 0.75))
    phase = baseline + int(rng.integers(-thick, 2 * thick + 1))  # the digit sits on a line
    for y in np.arange(phase % spacing, page_h, spacing).astype(int):
        marks[y : y + thick] = strength
    if kind == "squares":
        for x in np.arange(rng.uniform(0, spacing), page_w, spacing).astype(int):
            marks[:, x : x + thick] = strength
    return marks
