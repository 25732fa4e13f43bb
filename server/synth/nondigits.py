"""Drawings that are not digits, as a new user makes them, sent through the upload path.

Letters (DejaVu fonts, minus the letters a person could read as a digit), scribbles, shapes
(a circle with an X, squares, triangles, stars, zigzags, spirals), single dots and dashes, each
drawn at a random size, position, stroke width and polarity on a canvas of random size, encoded
as PNG and read by `server.preprocess` exactly as the API reads an upload. Seeded: the same seed
gives the same images, and item i does not depend on how many items are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from server.synth.fonts import font
from server.synth.render import SUPERSAMPLE, png, through_api

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# Every DejaVu text face; DejaVuMathTeXGyre is left out (a math font, not lettering).
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSans-ExtraLight.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerifCondensed.ttf",
    "DejaVuSerifCondensed-BoldItalic.ttf",
)

# Letters a person could read as a digit, so they are no fair test of "not a digit":
#   0: O o Q D      1: I l i j J T t f (a bar, or a bar with a flag or cross)
#   2: Z z          5: S s      6: b G      8: B      9: g q y (a loop on a stem)
DIGIT_LIKE = "OoQDIlijJTtfZzSsbGBgqy"
LETTERS = "".join(
    c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in DIGIT_LIKE
)

SHAPES = ("circle_x", "square", "triangle", "star", "zigzag", "spiral")
KINDS = ("letter", "scribble", *SHAPES, "dot", "dash")


Point = tuple[float, float]


@dataclass(frozen=True)
class NonDigit:
    """One drawing: what it is, the PNG as uploaded, and the (28, 28) input the network sees."""

    kind: str
    png: bytes
    image: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black


@dataclass(frozen=True)
class Pen:
    """Where and how big to draw on a (side x side) supersampled canvas."""

    side: int
    cx: float
    cy: float
    size: float  # the drawing's extent, px
    width: int  # stroke width, px
    ink: int
    rng: np.random.Generator

    def jitter(self, points: list[Point], amount: float = 0.03) -> list[Point]:
        """A hand's wobble: each point moved by a few percent of the drawing's size."""
        noise = self.rng.normal(0.0, amount * self.size, (len(points), 2))
        return [(x + dx, y + dy) for (x, y), (dx, dy) in zip(points, noise, strict=True)]

    def place(self, unit: list[Point], angle: float = 0.0) -> list[Point]:
        """Unit points in [-0.5, 0.5]^2 -> canvas px: scaled, rotated, centred at (cx, cy)."""
        c, s = math.cos(angle), math.sin(angle)
        return [
            (self.cx + self.size * (x * c - y * s), self.cy + self.size * (x * s + y * c))
            for x, y in unit
        ]


def stroke(draw: ImageDraw.ImageDraw, pen: Pen, points: list[Point]) -> None:
    """A pen stroke through `points`: round joints and caps, as the page's pad draws."""
    draw.line(points, fill=pen.ink, width=pen.width, joint="curve")
    r = pen.width / 2
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=pen.ink)


def arc(cx: float, cy: float, r: float, start: float, end: float, n: int = 48) -> list[Point]:
    return [
        (cx + r * math.cos(t), cy + r * math.sin(t)) for t in np.linspace(start, end, n).tolist()
    ]


def draw_letter(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    letter = LETTERS[int(pen.rng.integers(len(LETTERS)))]
    face = FONT_FILES[int(pen.rng.integers(len(FONT_FILES)))]
    draw.text(
        (pen.cx, pen.cy),
        letter,
        fill=pen.ink,
        font=font(FONT_DIR / face, int(pen.size)),
        anchor="mm",
    )


def draw_scribble(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    """A few loops and crossings: a smoothed random walk with momentum."""
    n = int(pen.rng.integers(25, 60))
    heading, turn = pen.rng.uniform(0, 2 * math.pi), 0.0
    x, y, points = 0.0, 0.0, [(0.0, 0.0)]
    for _ in range(n):
        turn = 0.7 * turn + pen.rng.normal(0.0, 0.6)
        heading += turn
        x, y = x + 0.08 * math.cos(heading), y + 0.08 * math.sin(heading)
        x, y = float(np.clip(x, -0.5, 0.5)), float(np.clip(y, -0.5, 0.5))
        points.append((x, y))
    stroke(draw, pen, pen.place(points))


def draw_circle_x(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    stroke(draw, pen, pen.jitter(pen.place(arc(0, 0, 0.5, 0, 2 * math.pi + 0.3)), 0.01))
    a = 0.5 * pen.rng.uniform(0.55, 0.85)
    angle = pen.rng.uniform(-0.3, 0.3)
    stroke(draw, pen, pen.place([(-a, -a), (a, a)], angle))
    stroke(draw, pen, pen.place([(a, -a), (-a, a)], angle))


def filled_or_outlined(draw: ImageDraw.ImageDraw, pen: Pen, corners: list[Point]) -> None:
    """A closed shape: filled one time in four, else drawn as its outline in pen strokes."""
    if pen.rng.random() < 0.25:
        draw.polygon(corners, fill=pen.ink)
    else:
        stroke(draw, pen, corners)


def draw_square(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    h = 0.5 * pen.rng.uniform(0.6, 1.0)  # a rectangle, up to a square
    corners = [(-0.5, -h), (0.5, -h), (0.5, h), (-0.5, h), (-0.5, -h)]
    placed = pen.jitter(pen.place(corners, pen.rng.uniform(-0.4, 0.4)), 0.015)
    filled_or_outlined(draw, pen, placed)


def draw_triangle(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    corners = [(0.0, -0.5), (0.5, 0.4), (-0.5, 0.4), (0.0, -0.5)]
    placed = pen.jitter(pen.place(corners, pen.rng.uniform(-0.5, 0.5)), 0.02)
    filled_or_outlined(draw, pen, placed)


def draw_star(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    """A five-pointed star in one stroke (a pentagram), or a filled outline star."""
    if pen.rng.random() < 0.5:
        points = [
            (0.5 * math.sin(k * 4 * math.pi / 5), -0.5 * math.cos(k * 4 * math.pi / 5))
            for k in range(6)
        ]
        stroke(draw, pen, pen.jitter(pen.place(points, pen.rng.uniform(-0.3, 0.3)), 0.015))
        return
    points = [
        (r * math.sin(k * math.pi / 5), -r * math.cos(k * math.pi / 5))
        for k, r in zip(range(10), [0.5, 0.2] * 5, strict=True)
    ]
    draw.polygon(pen.place(points, pen.rng.uniform(-0.3, 0.3)), fill=pen.ink)


def draw_zigzag(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    teeth = int(pen.rng.integers(3, 7))
    tall = pen.rng.uniform(0.2, 0.5)
    points = [(-0.5 + k / teeth, tall * (0.5 if k % 2 else -0.5)) for k in range(teeth + 1)]
    angle = pen.rng.uniform(-0.35, 0.35) + (math.pi / 2 if pen.rng.random() < 0.3 else 0.0)
    stroke(draw, pen, pen.jitter(pen.place(points, angle), 0.02))


def draw_spiral(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    turns = pen.rng.uniform(2.0, 3.5)
    t = np.linspace(0.0, turns * 2 * math.pi, 160)
    r = 0.5 * t / t[-1]
    points = list(zip((r * np.cos(t)).tolist(), (r * np.sin(t)).tolist(), strict=True))
    stroke(draw, pen, pen.place(points, pen.rng.uniform(0, 2 * math.pi)))


def draw_dot(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    """A click or a short dab of the pen: a round blob the brush's width, maybe a little long."""
    r = pen.width / 2 * pen.rng.uniform(1.0, 1.6)
    dx, dy = pen.rng.normal(0.0, 0.4 * r, 2)
    points = [(pen.cx, pen.cy), (pen.cx + dx, pen.cy + dy)]
    draw.line(points, fill=pen.ink, width=int(2 * r))
    for x, y in points:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=pen.ink)


def draw_dash(draw: ImageDraw.ImageDraw, pen: Pen) -> None:
    """A horizontal-ish dash (within 25 degrees: a steeper one is a person's 1)."""
    length = pen.rng.uniform(0.3, 1.0)
    angle = math.radians(pen.rng.uniform(-25, 25))
    stroke(draw, pen, pen.place([(-length / 2, 0.0), (0.0, 0.01), (length / 2, 0.0)], angle))


DRAW: dict[str, Callable[[ImageDraw.ImageDraw, Pen], None]] = {
    "letter": draw_letter,
    "scribble": draw_scribble,
    "circle_x": draw_circle_x,
    "square": draw_square,
    "triangle": draw_triangle,
    "star": draw_star,
    "zigzag": draw_zigzag,
    "spiral": draw_spiral,
    "dot": draw_dot,
    "dash": draw_dash,
}


def draw_png(kind: str, rng: np.random.Generator) -> bytes:
    """One `kind` drawing on a canvas of random size and polarity, as PNG bytes."""
    side = int(rng.integers(64, 321))  # the canvas as uploaded
    big = side * SUPERSAMPLE
    dark_on_light = rng.random() < 0.7  # the pad's way; chalk-on-board for the rest
    paper, ink = (int(rng.integers(215, 256)), int(rng.integers(0, 50)))
    if not dark_on_light:
        paper, ink = 255 - paper, 255 - ink
    size = big * rng.uniform(0.25, 0.8)
    margin = size / 2 + big * 0.05
    pen = Pen(
        side=big,
        cx=rng.uniform(margin, big - margin),
        cy=rng.uniform(margin, big - margin),
        size=size,
        width=max(SUPERSAMPLE, int(big * rng.uniform(0.015, 0.08))),
        ink=ink,
        rng=rng,
    )
    canvas = Image.new("L", (big, big), paper)
    DRAW[kind](ImageDraw.Draw(canvas), pen)
    return png(np.asarray(canvas.resize((side, side), Image.Resampling.BOX)))


def nondigit(index: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> NonDigit:
    """Drawing `index` of the seeded set: kinds in turn, each through the upload path."""
    kind = kinds[index % len(kinds)]
    rng = np.random.default_rng([seed, index])
    data = draw_png(kind, rng)
    return NonDigit(kind, data, through_api(data))


def nondigits(count: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[NonDigit]:
    """`count` drawings, the kinds in equal shares (round robin)."""
    unknown = sorted(set(kinds) - set(DRAW))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; known: {list(DRAW)}")
    return [nondigit(i, seed, kinds) for i in range(count)]
