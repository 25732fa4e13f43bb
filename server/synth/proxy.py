"""The handwriting proxy: seeded sets of non-MNIST digits sent through the API's upload path.

Three families: `strokes` (procedural pen strokes, every style of `GLYPHS`, pens from hairline
to thick, a fifth blocky and binarised), `fonts` (handwriting fonts, when installed) and `hands`
(the held-out glyphs of hands.py with varying pens, markers, pencil, photographed paper and
low-resolution scans). Sample i of a set depends only on (seed, family, i), so any prefix or
slice is reproducible on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.synth.fonts import available_fonts, ink_from_font
from server.synth.hands import HANDS, wide_pose
from server.synth.paper import low_res_scan, pen_ink, pencil, photographed_page
from server.synth.render import blocky, digit_input, ink_from_strokes, page
from server.synth.strokes import GLYPHS, label_of, pose

FAMILY_IDS = {"strokes": 1, "fonts": 2, "hands": 3}  # mixed into each sample's seed

HELD_OUT_FAMILIES = ("fonts", "hands")
"""The families no training or calibration draws from: training and server/ood add stroke
digits of every `GLYPHS` style, so only these measure how a model reads writers it never saw."""


@dataclass(frozen=True)
class ProxySet:
    """Digits as the API's input, with where each came from."""

    images: np.ndarray  # (N, 28, 28) float32 in [0, 1], white ink on black
    labels: np.ndarray  # (N,) int64
    family: np.ndarray  # (N,) str: "strokes", "fonts" or "hands"
    style: np.ndarray  # (N,) str: "1-european", "fonts/breip", "hands/9-q", ...

    def __len__(self) -> int:
        return len(self.labels)


def stroke_ink(style: str, rng: np.random.Generator) -> np.ndarray:
    """One digit of a stroke style, as (H, W) ink: random hand, size and pen."""
    glyph = pose(GLYPHS[style](rng), rng, jitter=rng.uniform(0.0, 0.05))
    height = int(rng.integers(24, 200))
    pen = float(np.exp(rng.uniform(np.log(0.035), np.log(0.2))))  # hairline to felt tip
    if rng.random() < 0.2:
        return blocky(ink_from_strokes(glyph, height, max(pen, 0.1)), rng)
    return ink_from_strokes(glyph, height, pen)


def stroke_sample(
    i: int, seed: int, styles: tuple[str, ...], *, via_png: bool = True
) -> tuple[np.ndarray, int, str]:
    """Sample i of a stroke set: (28x28 input, label, style); styles taken in turn."""
    style = styles[i % len(styles)]
    rng = np.random.default_rng([seed, FAMILY_IDS["strokes"], i])
    levels = page(stroke_ink(style, rng), rng)
    image = digit_input(levels, via_png=via_png)
    return image, label_of(style), style


def font_page(i: int, seed: int) -> tuple[np.ndarray, int, str]:
    """Sample i of a font set as the page a writer hands in: (H, W) gray levels, label,
    "fonts/<name>"; fonts and digits in turn."""
    fonts = available_fonts()
    if not fonts:
        raise LookupError("no handwriting fonts installed (see server/synth/fonts.py)")
    names = list(fonts)
    digit, name = i % 10, names[(i // 10) % len(names)]
    rng = np.random.default_rng([seed, FAMILY_IDS["fonts"], i])
    ink = ink_from_font(fonts[name], digit, int(rng.integers(24, 200)), rng)
    return page(ink, rng), digit, f"fonts/{name}"


def font_sample(i: int, seed: int, *, via_png: bool = True) -> tuple[np.ndarray, int, str]:
    """Sample i of a font set: (28x28 input, label, "fonts/<name>")."""
    levels, digit, style = font_page(i, seed)
    return digit_input(levels, via_png=via_png), digit, style


def hand_page(i: int, seed: int) -> tuple[np.ndarray, int, str]:
    """Sample i of a hands set as the page a writer hands in: (H, W) gray levels, label,
    "hands/<style>"; the styles of HANDS in turn."""
    style = list(HANDS)[i % len(HANDS)]
    rng = np.random.default_rng([seed, FAMILY_IDS["hands"], i])
    glyph = wide_pose(HANDS[style](rng), rng, jitter=rng.uniform(0.0, 0.045))
    height = int(rng.integers(32, 220))
    how = rng.random()  # 3 in 10 scanned small, 5 in 10 photographed, 2 in 10 a plain upload
    scanned = how < 0.3
    marker = rng.random() < 0.15  # thick for the digit's size: loops nearly filled, still open
    widest = rng.uniform(0.2, 0.26) if marker else np.exp(rng.uniform(np.log(0.05), np.log(0.24)))
    pen = _legible_pen(glyph, float(widest), style)
    if scanned:  # a hairline scanned 16-20 px high would fade to nothing: a line of 1 px or more
        pen = max(pen, 0.07)
    ink = pen_ink(glyph, height, pen, rng, marker=marker)
    graphite = not marker and rng.random() < 0.3
    if graphite:
        ink = pencil(ink, rng)
    if scanned:
        # thresholding breaks up pencil grain and a line under 1.5 scan pixels (pen < 0.09)
        levels = low_res_scan(ink, rng, threshold=not graphite and pen >= 0.09)
    elif how < 0.8:
        gray = rng.uniform(0.3, 0.5) if graphite else rng.uniform(0.0, 0.3)
        levels = photographed_page(ink, rng, pen=gray)
    else:
        levels = page(ink, rng)
    return levels, label_of(style), f"hands/{style}"


def _legible_pen(glyph: tuple[np.ndarray, ...], pen: float, style: str) -> float:
    """The pen's width (a fraction of the height), at most 0.3 of a narrow glyph's width
    (across its long axis, so a slanted one counts as narrow too) so its counters (a 0's or 8's
    loops, a 4's or 9's) stay open; a 1 has none to fill."""
    if label_of(style) == 1:
        return pen
    points = np.concatenate(glyph)  # (P, 2)
    height = float(np.ptp(points[:, 1]))
    centred = points - points.mean(axis=0)
    axes = np.linalg.eigh(centred.T @ centred)[1]  # (2, 2), columns: the minor axis, the major
    width = min(float(np.ptp(points[:, 0])), float(np.ptp(centred @ axes[:, 0])))
    return min(pen, 0.3 * width / max(height, 1e-6))


def hand_sample(i: int, seed: int, *, via_png: bool = True) -> tuple[np.ndarray, int, str]:
    """Sample i of a hands set: (28x28 input, label, "hands/<style>")."""
    levels, digit, style = hand_page(i, seed)
    return digit_input(levels, via_png=via_png), digit, style


def hand_set(n: int, seed: int = 0, *, via_png: bool = True) -> ProxySet:
    """n held-out hand-written digits, the styles of HANDS in turn."""
    return _collect([hand_sample(i, seed, via_png=via_png) for i in range(n)], "hands")


def stroke_set(
    n: int, seed: int = 0, styles: tuple[str, ...] | None = None, *, via_png: bool = True
) -> ProxySet:
    """n stroke digits, styles in turn (all of GLYPHS by default)."""
    chosen = tuple(GLYPHS) if styles is None else styles
    unknown = sorted(set(chosen) - set(GLYPHS))
    if unknown:
        raise KeyError(f"unknown stroke styles {unknown}; styles are {sorted(GLYPHS)}")
    samples = [stroke_sample(i, seed, chosen, via_png=via_png) for i in range(n)]
    return _collect(samples, "strokes")


def font_set(n: int, seed: int = 0, *, via_png: bool = True) -> ProxySet:
    """n font digits; empty when no handwriting font is installed."""
    if not available_fonts():
        return _collect([], "fonts")
    return _collect([font_sample(i, seed, via_png=via_png) for i in range(n)], "fonts")


def proxy_set(n_per_family: int, seed: int = 0) -> ProxySet:
    """The three families (strokes, fonts, hands), through PNG files and the API's decoder."""
    return concat(
        stroke_set(n_per_family, seed), font_set(n_per_family, seed), hand_set(n_per_family, seed)
    )


def concat(*sets: ProxySet) -> ProxySet:
    return ProxySet(
        images=np.concatenate([s.images for s in sets]),
        labels=np.concatenate([s.labels for s in sets]),
        family=np.concatenate([s.family for s in sets]),
        style=np.concatenate([s.style for s in sets]),
    )


def _collect(samples: list[tuple[np.ndarray, int, str]], family: str) -> ProxySet:
    n = len(samples)
    return ProxySet(
        images=np.stack([s[0] for s in samples]) if n else np.zeros((0, 28, 28), np.float32),
        labels=np.array([s[1] for s in samples], dtype=np.int64),
        family=np.array([family] * n, dtype=str),
        style=np.array([s[2] for s in samples], dtype=str),
    )
