"""Digits 0-9 as pen strokes, in the styles people outside MNIST write them.

MNIST's writers were American: its 1 is a bare stick, its 4 closed, its 7 without a bar. The
glyphs here add the European 1 with its long up-stroke, the 1 with a base, the open-top 4, the
barred and hooked 7, the 9 with a straight or curved tail, and more, so a model's reading of
other writers can be measured (and trained for) without their handwriting.

A glyph is a tuple of strokes; a stroke is a (P, 2) float array of (x, y) points in a box about
0.6 wide and 1 high, y pointing down. `GLYPHS` maps "digit-style" to its builder.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

Stroke = np.ndarray  # (P, 2) points (x, y), y down
Glyph = tuple[Stroke, ...]


def line(*points: tuple[float, float]) -> Stroke:
    """A polyline through the points, resampled densely so jitter bends it smoothly."""
    corners = np.asarray(points, dtype=np.float64)  # (K, 2)
    pieces = [
        np.linspace(a, b, max(2, int(np.hypot(*(b - a)) * 40)), endpoint=False)
        for a, b in itertools.pairwise(corners)
    ]
    return np.concatenate([*pieces, corners[-1:]])  # (P, 2)


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """An elliptic arc from angle `start` to `end` (degrees; 0 right, 90 down: clockwise)."""
    t = np.deg2rad(np.linspace(start, end, max(8, int(abs(end - start) / 6))))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)  # (P, 2)


def join(*strokes: Stroke) -> Stroke:
    """Pieces drawn without lifting the pen, as one stroke."""
    return np.concatenate(strokes)


def point_on(cx: float, cy: float, rx: float, ry: float, angle: float) -> tuple[float, float]:
    t = np.deg2rad(angle)
    return float(cx + rx * np.cos(t)), float(cy + ry * np.sin(t))


def zero_oval(r: np.random.Generator) -> Glyph:
    start = r.uniform(230, 290)
    return (arc(0.3, 0.5, 0.3, 0.5, start, start + r.uniform(350, 375)),)


def zero_slashed(r: np.random.Generator) -> Glyph:
    return (*zero_oval(r), line((0.52, 0.12), (0.08, 0.88)))


def one_stick(r: np.random.Generator) -> Glyph:
    return (line((0.3, 0.0), (0.3, 1.0)),)


def one_flag(r: np.random.Generator) -> Glyph:
    return (line((r.uniform(0.05, 0.2), r.uniform(0.15, 0.3)), (0.32, 0.0), (0.32, 1.0)),)


def one_european(r: np.random.Generator) -> Glyph:
    """The long up-stroke that MNIST-trained networks read as a 7 or a 4."""
    return (line((r.uniform(-0.1, 0.1), r.uniform(0.35, 0.6)), (0.42, 0.0), (0.42, 1.0)),)


def one_base(r: np.random.Generator) -> Glyph:
    return (*one_flag(r), line((0.08, 1.0), (0.56, 1.0)))


def two_plain(r: np.random.Generator) -> Glyph:
    top = arc(0.3, 0.28, 0.28, 0.28, 195, 380)
    return (join(top, line(tuple(top[-1]), (0.0, 1.0), (r.uniform(0.5, 0.65), 1.0))),)


def two_loop(r: np.random.Generator) -> Glyph:
    top = arc(0.3, 0.28, 0.28, 0.28, 195, 380)
    loop = arc(0.1, 0.88, 0.1, 0.1, 270, 20)  # a small loop where the diagonal meets the base
    return (join(top, line(tuple(top[-1]), (0.18, 0.84)), loop, line((0.2, 0.92), (0.62, 0.95))),)


def three_round(r: np.random.Generator) -> Glyph:
    upper = arc(0.3, 0.25, 0.27, 0.25, r.uniform(190, 215), 450)
    lower = arc(0.3, 0.75, 0.3, 0.25, 270, r.uniform(500, 525))
    return (join(upper, lower),)


def three_flat(r: np.random.Generator) -> Glyph:
    """The flat-topped 3, drawn like a Z whose lower half is a bowl."""
    start = point_on(0.3, 0.7, 0.3, 0.3, 250)
    return (join(line((0.02, 0.0), (0.58, 0.0), start), arc(0.3, 0.7, 0.3, 0.3, 250, 515)),)


def four_closed(r: np.random.Generator) -> Glyph:
    bar = r.uniform(0.6, 0.72)
    return (line((0.45, 0.0), (0.0, bar), (0.6, bar)), line((0.45, 0.0), (0.45, 1.0)))


def four_open(r: np.random.Generator) -> Glyph:
    """The open-top 4 (read as 9 or 6 by MNIST-trained networks): two uprights and a bar."""
    bar = r.uniform(0.5, 0.65)
    left = r.uniform(0.0, 0.18)
    return (
        line((left, 0.0), (0.02, bar), (0.62, bar)),
        line((0.45, r.uniform(0.0, 0.2)), (0.45, 1.0)),
    )


def five_classic(r: np.random.Generator) -> Glyph:
    neck = point_on(0.28, 0.68, 0.3, 0.28, 215)
    flag = line((0.08, 0.0), (r.uniform(0.5, 0.62), 0.0))
    return (join(line((0.1, 0.0), neck), arc(0.28, 0.68, 0.3, 0.28, 215, 500)), flag)


def five_onestroke(r: np.random.Generator) -> Glyph:
    """Flag first, then down and round, without lifting the pen."""
    neck = point_on(0.28, 0.7, 0.3, 0.26, 225)
    return (join(line((0.6, 0.0), (0.08, 0.02), neck), arc(0.28, 0.7, 0.3, 0.26, 225, 505)),)


def six_curved(r: np.random.Generator) -> Glyph:
    stem = arc(0.62, 0.68, 0.6, 0.68, r.uniform(245, 265), 180)
    return (join(stem, arc(0.3, 0.7, 0.28, 0.28, 180, 540)),)


def six_straight(r: np.random.Generator) -> Glyph:
    return (join(line((0.5, 0.0), (0.03, 0.68)), arc(0.3, 0.72, 0.27, 0.26, 180, 530)),)


def seven_plain(r: np.random.Generator) -> Glyph:
    return (line((0.0, 0.0), (0.6, 0.0), (r.uniform(0.1, 0.3), 1.0)),)


def seven_bar(r: np.random.Generator) -> Glyph:
    return (*seven_plain(r), line((0.18, 0.5), (0.6, 0.5)))


def seven_hook(r: np.random.Generator) -> Glyph:
    return (line((0.0, 0.18), (0.02, 0.0), (0.6, 0.0), (0.25, 1.0)),)


def eight_loops(r: np.random.Generator) -> Glyph:
    return (arc(0.3, 0.24, 0.22, 0.24, 0, 365), arc(0.3, 0.73, 0.3, 0.27, 270, 635))


def eight_figure(r: np.random.Generator) -> Glyph:
    """One stroke, a vertical figure of eight."""
    t = np.linspace(0.0, 2 * np.pi, 80)
    return (np.stack([0.3 + 0.6 * np.sin(t) * np.cos(t), 0.5 + 0.5 * np.sin(t)], axis=1),)


def nine_straight(r: np.random.Generator) -> Glyph:
    """The straight tail, read as a 3 by MNIST-trained networks."""
    return (join(arc(0.3, 0.27, 0.28, 0.27, 0, 365), line((0.58, 0.3), (0.56, 1.0))),)


def nine_curved(r: np.random.Generator) -> Glyph:
    return (join(arc(0.3, 0.27, 0.28, 0.27, 0, 365), arc(0.2, 0.3, 0.38, 0.68, 0, 115)),)


def nine_slanted(r: np.random.Generator) -> Glyph:
    return (join(arc(0.3, 0.27, 0.28, 0.27, 0, 365), line((0.58, 0.3), (0.28, 1.0))),)


GLYPHS: dict[str, Callable[[np.random.Generator], Glyph]] = {
    "0-oval": zero_oval,
    "0-slashed": zero_slashed,
    "1-stick": one_stick,
    "1-flag": one_flag,
    "1-european": one_european,
    "1-base": one_base,
    "2-plain": two_plain,
    "2-loop": two_loop,
    "3-round": three_round,
    "3-flat": three_flat,
    "4-closed": four_closed,
    "4-open": four_open,
    "5-classic": five_classic,
    "5-onestroke": five_onestroke,
    "6-curved": six_curved,
    "6-straight": six_straight,
    "7-plain": seven_plain,
    "7-bar": seven_bar,
    "7-hook": seven_hook,
    "8-loops": eight_loops,
    "8-figure": eight_figure,
    "9-straight": nine_straight,
    "9-curved": nine_curved,
    "9-slanted": nine_slanted,
}
"""Every style by name "digit-style"; the digit is the name's first character."""


def label_of(style: str) -> int:
    return int(style[0])


def smooth_jitter(points: np.ndarray, r: np.random.Generator, amount: float) -> np.ndarray:
    """Bend strokes by a smooth random displacement field (a few low-frequency waves)."""
    out = points.copy()
    for axis in (0, 1):
        for _ in range(3):
            k = r.uniform(1.0, 4.0, 2)  # waves per glyph height, along x and y
            phase = r.uniform(0, 2 * np.pi)
            out[:, axis] += amount / 3 * np.sin(2 * np.pi * (points @ k) + phase)
    return out


def pose(glyph: Glyph, r: np.random.Generator, jitter: float) -> Glyph:
    """A writer's hand: slant, width, rotation and a wobble, applied to every stroke alike."""
    slant = r.uniform(-0.15, 0.4)  # most people lean right
    width = r.uniform(0.65, 1.35)
    return posed(glyph, r, jitter, slant, width, r.uniform(-8, 8))


def posed(
    glyph: Glyph, r: np.random.Generator, jitter: float, slant: float, width: float, degrees: float
) -> Glyph:
    """Every stroke wobbled by `jitter`, then slanted, widened and turned by `degrees` about the
    glyph's centre."""
    angle = np.deg2rad(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[width, -slant], [0.0, 1.0]])
    centre = np.array([0.3, 0.5])
    return tuple(
        (smooth_jitter(s, r, jitter) - centre) @ matrix.T + centre
        for s in glyph  # each (P, 2) -> (P, 2)
    )
