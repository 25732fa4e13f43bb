"""Digits as people outside the USA write them, in glyphs training never sees (held out).

`strokes.GLYPHS` already teaches a model the European 1, the open 4 and the barred 7; these are
other hands: the 1 with a flag reaching half-way down or further (with or without a base), the
Swiss 1 that is nearly an inverted V, the 4 whose left stroke slants in to nearly meet the
upright and the 4 whose short left stroke starts well away from it, the one-stroke 4 with a
loop, the 9 with a small (sometimes open) loop and a long q-like tail and the 9 whose loop is a
small open hook beside a straight tail, the Z-like 2 and the 2 with a sharp corner and flat
base, the pointed 3, the flat, the deep and the detached-bar 5, 7s that are always crossed,
two-circle and S-drawn 8s, narrow and open-topped 0s. `wide_pose` adds wide slants, narrow-tall
to wide-short proportions and a tremor. Nothing in server.training
or server.ood imports this module, so the proxy's "hands" family measures reading, not memory.

Same conventions as strokes.py: a glyph is a tuple of (P, 2) strokes in a box about 0.6 wide
and 1 high, y down; `HANDS` maps "digit-style" to its builder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from server.synth.strokes import Glyph, arc, join, line, point_on, posed


def zero_narrow(r: np.random.Generator) -> Glyph:
    start = r.uniform(240, 290)
    rx = r.uniform(0.16, 0.22)
    return (arc(0.3, 0.5, rx, 0.5, start, start + r.uniform(355, 380)),)


def zero_open_top(r: np.random.Generator) -> Glyph:
    """Started right of the top, round, and stopped short of where it began."""
    start = r.uniform(280, 300)
    return (arc(0.3, 0.5, 0.28, 0.5, start, start + r.uniform(310, 335)),)


def zero_overshoot(r: np.random.Generator) -> Glyph:
    """Round past the start, the pen's end crossing inside the top."""
    start = r.uniform(200, 240)
    return (arc(0.3, 0.5, 0.27, 0.5, start, start + r.uniform(390, 420)),)


def one_long_flag(r: np.random.Generator) -> Glyph:
    """A flag reaching half-way down or further, often a base: the 1 of much of Europe and
    Asia, written where a 7 always carries a bar."""
    top = (0.36, 0.0)
    flag = line((r.uniform(0.0, 0.08), r.uniform(0.32, 0.72)), top, (0.36, 1.0))
    if r.random() < 0.4:
        return (flag,)
    return (flag, line((r.uniform(0.08, 0.16), 1.0), (r.uniform(0.56, 0.64), 1.0)))


def one_swiss(r: np.random.Generator) -> Glyph:
    """A long up-stroke and the down-stroke: almost an inverted V (Swiss, German)."""
    foot = (r.uniform(-0.05, 0.1), r.uniform(0.5, 0.75))
    return (line(foot, (0.38, 0.0), (r.uniform(0.4, 0.46), 1.0)),)


def two_z(r: np.random.Generator) -> Glyph:
    """Angular, like a Z whose top rises to a point."""
    peak = (r.uniform(0.3, 0.4), 0.0)
    return (line((0.0, r.uniform(0.18, 0.3)), peak, (0.58, 0.2), (0.02, 1.0), (0.62, 0.98)),)


def two_curly(r: np.random.Generator) -> Glyph:
    """A base that waves and curls up at its end."""
    top = arc(0.3, 0.28, 0.28, 0.28, 195, 380)
    x = np.linspace(0.04, 0.56, 30)
    wave = np.stack([x, 0.98 - 0.04 * np.sin((x - 0.04) / 0.52 * 2 * np.pi)], axis=1)
    curl = arc(0.56, 0.88, 0.08, 0.1, 90, -r.uniform(60, 120))
    return (join(top, line(tuple(top[-1]), (0.04, 0.98)), wave, curl),)


def two_flat_corner(r: np.random.Generator) -> Glyph:
    """A round top, a straight diagonal down to a sharp corner, and a flat base."""
    top = arc(0.3, 0.26, 0.28, 0.26, r.uniform(190, 210), r.uniform(370, 390))
    corner = (r.uniform(0.0, 0.04), 1.0)
    return (join(top, line(tuple(top[-1]), corner, (r.uniform(0.58, 0.66), 1.0))),)


def three_pointed(r: np.random.Generator) -> Glyph:
    """Two bowls meeting at a sharp point in the middle."""
    cusp = (r.uniform(0.14, 0.24), 0.5)
    upper = arc(0.3, 0.25, 0.27, 0.25, r.uniform(195, 215), 430)
    lower = arc(0.3, 0.75, 0.3, 0.25, 240, r.uniform(500, 520))
    return (join(upper, line(tuple(upper[-1]), cusp, point_on(0.3, 0.75, 0.3, 0.25, 240)), lower),)


def three_small_top(r: np.random.Generator) -> Glyph:
    """A small upper bowl set right, a large lower one."""
    upper = arc(0.36, 0.2, 0.2, 0.2, r.uniform(190, 210), 450)
    lower = arc(0.3, 0.7, 0.3, 0.3, 270, r.uniform(505, 525))
    return (join(upper, lower),)


def four_slanted_open(r: np.random.Generator) -> Glyph:
    """Open at the top, its left stroke slanting in to nearly meet the upright."""
    bar = r.uniform(0.55, 0.68)
    gap = r.uniform(0.05, 0.13)
    return (
        line((0.42 - gap, r.uniform(0.0, 0.08)), (0.0, bar), (0.62, bar)),
        line((0.44, 0.0), (0.44, 1.0)),
    )


def four_short_left(r: np.random.Generator) -> Glyph:
    """Open, its left stroke short and starting well away from the upright."""
    bar = r.uniform(0.55, 0.66)
    start = (r.uniform(0.06, 0.18), r.uniform(0.18, 0.34))
    return (
        line(start, (0.0, bar), (0.64, bar)),
        line((0.46, 0.0), (0.46, 1.0)),
    )


def four_crossed(r: np.random.Generator) -> Glyph:
    """Open, the bar drawn long and crossing a leaning upright."""
    bar = r.uniform(0.55, 0.65)
    return (
        line((0.12, 0.0), (0.0, bar), (0.66, bar - r.uniform(0.0, 0.06))),
        line((0.5, 0.0), (0.4, 1.0)),
    )


def four_looped(r: np.random.Generator) -> Glyph:
    """One stroke: down-left, across, a loop back up over the crossing to the top, then down."""
    bar = r.uniform(0.58, 0.66)
    top = (0.46, r.uniform(0.0, 0.06))
    loop = arc(0.53, bar - 0.07, 0.09, 0.07, 60, -170)  # from the bar's end, up and back left
    across = line((r.uniform(0.22, 0.34), 0.0), (0.0, bar), (0.62, bar))
    return (join(across, loop, line(tuple(loop[-1]), top, (0.46, 1.0))),)


def five_flat(r: np.random.Generator) -> Glyph:
    """A flat, shallow bowl left open, under a long flag."""
    neck = point_on(0.3, 0.72, 0.3, 0.22, 235)
    bowl = arc(0.3, 0.72, 0.3, 0.22, 235, r.uniform(440, 470))
    flag = line((0.08, 0.0), (r.uniform(0.55, 0.66), 0.0))
    return (join(line((0.1, 0.0), neck), bowl), flag)


def five_deep(r: np.random.Generator) -> Glyph:
    """A short upright and a deep round bowl."""
    neck = point_on(0.3, 0.64, 0.3, 0.36, 230)
    bowl = arc(0.3, 0.64, 0.3, 0.36, 230, r.uniform(495, 515))
    flag = line((0.1, 0.0), (r.uniform(0.5, 0.6), r.uniform(-0.03, 0.03)))
    return (join(line((0.12, 0.0), neck), bowl), flag)


def five_detached_bar(r: np.random.Generator) -> Glyph:
    """The upright and bowl in one stroke; the top bar drawn after, apart and to the right."""
    neck = point_on(0.3, 0.68, 0.3, 0.28, 232)
    bowl = arc(0.3, 0.68, 0.3, 0.28, 232, r.uniform(480, 505))
    flag_y = r.uniform(-0.06, 0.0)
    flag = line((r.uniform(0.2, 0.28), flag_y), (r.uniform(0.62, 0.72), flag_y - 0.02))
    return (join(line((0.1, 0.04), neck), bowl), flag)


def six_small_loop(r: np.random.Generator) -> Glyph:
    """A long curved stem sweeping into a small loop."""
    ry = r.uniform(0.18, 0.24)
    stem = arc(0.66, 1.0 - ry, 0.6, 1.0 - ry, r.uniform(250, 265), 180)
    return (join(stem, arc(0.26, 1.0 - ry, 0.2, ry, 180, 540)),)


def six_spiral(r: np.random.Generator) -> Glyph:
    """The loop drawn round from the bottom curls inward at its end, not closing on the stem."""
    stem = arc(0.62, 0.68, 0.6, 0.68, r.uniform(250, 265), 180)
    t = np.deg2rad(np.linspace(180, -r.uniform(150, 175), 60))  # bottom, right, top, inward
    shrink = np.interp(np.arange(60), [0, 40, 59], [1.0, 1.0, r.uniform(0.6, 0.75)])
    loop = np.stack([0.3 + 0.28 * shrink * np.cos(t), 0.7 + 0.28 * shrink * np.sin(t)], axis=1)
    return (join(stem, loop),)


def seven_crossed_hook(r: np.random.Generator) -> Glyph:
    """A hook down at the top's start, the top, the stem, and a bar across it."""
    foot = r.uniform(0.2, 0.3)
    bar = r.uniform(0.45, 0.55)
    return (
        line((0.02, foot), (0.0, 0.0), (0.6, 0.0), (0.24, 1.0)),
        line((0.15, bar), (0.58, bar - r.uniform(0.0, 0.05))),
    )


def seven_wavy(r: np.random.Generator) -> Glyph:
    """A top that waves like a tilde, a straight stem, a short bar."""
    x = np.linspace(0.0, 0.6, 30)
    top = np.stack([x, 0.04 - 0.05 * np.sin(x / 0.6 * 2 * np.pi)], axis=1)
    bar = r.uniform(0.48, 0.58)
    return (
        join(top, line((0.6, 0.04), (r.uniform(0.18, 0.3), 1.0))),
        line((0.2, bar), (0.52, bar)),
    )


def seven_curved(r: np.random.Generator) -> Glyph:
    """The stem bows as it falls; crossed, as every 7 of these writers is."""
    stem = arc(-0.1, 0.0, 0.7, 1.0, 0, r.uniform(55, 75))
    bar = r.uniform(0.45, 0.55)
    x = float(np.interp(bar, stem[:, 1], stem[:, 0]))  # the stem at the bar's height
    return (join(line((0.0, 0.02), (0.6, 0.0)), stem), line((x - 0.2, bar), (x + 0.2, bar)))


def eight_circles(r: np.random.Generator) -> Glyph:
    """Two circles, one on the other, barely touching."""
    gap = r.uniform(-0.02, 0.02)
    top = arc(0.3 + r.uniform(-0.05, 0.05), 0.21, 0.21, 0.21, 0, 362)
    bottom = arc(0.3, 0.72 + gap, 0.28, 0.28, 0, 362)
    return (top, bottom)


def eight_s_closed(r: np.random.Generator) -> Glyph:
    """An S, then one stroke from its lower end up to its upper end."""
    upper = arc(0.3, 0.25, 0.25, 0.25, r.uniform(320, 345), 90)
    lower = arc(0.3, 0.75, 0.3, 0.25, 270, r.uniform(510, 530))
    closing = line(tuple(lower[-1]), tuple(upper[0]))
    return (join(upper, lower), closing)


def nine_q(r: np.random.Generator) -> Glyph:
    """A small loop, sometimes not closed, and a long straight tail: like a q."""
    ry = r.uniform(0.16, 0.22)
    start = r.uniform(-40, -10)
    loop = arc(0.32, ry, 0.24, ry, start, start - r.uniform(320, 365))
    tail = line(tuple(loop[-1]), (0.56, ry), (r.uniform(0.5, 0.58), 1.0))
    return (join(loop, tail),)


def nine_open_hook(r: np.random.Generator) -> Glyph:
    """A straight tail, and the loop a small hook that leaves it and does not come back."""
    ry = r.uniform(0.14, 0.2)
    hook = arc(0.34, ry + 0.01, 0.2, ry, r.uniform(-25, -5), -r.uniform(280, 310))
    return (hook, line((0.54, 0.0), (r.uniform(0.5, 0.58), 1.0)))


def nine_hooked(r: np.random.Generator) -> Glyph:
    """A q-like 9 whose long tail turns left at its foot."""
    loop = arc(0.3, 0.24, 0.26, 0.24, -20, -380)
    tail = line(tuple(loop[-1]), (0.56, 0.82))
    return (join(loop, tail, arc(0.4, 0.82, 0.16, 0.17, 0, r.uniform(100, 140))),)


def nine_tail_right(r: np.random.Generator) -> Glyph:
    """The loop first, then the tail straight down from its top right, like an 'a'."""
    loop = arc(0.3, 0.27, 0.28, 0.27, -30, -395)
    return (loop, line((0.58, 0.0), (0.58, 1.0)))


HANDS: dict[str, Callable[[np.random.Generator], Glyph]] = {
    "0-narrow": zero_narrow,
    "0-open-top": zero_open_top,
    "0-overshoot": zero_overshoot,
    "1-long-flag": one_long_flag,
    "1-swiss": one_swiss,
    "2-z": two_z,
    "2-curly": two_curly,
    "2-flat-corner": two_flat_corner,
    "3-pointed": three_pointed,
    "3-small-top": three_small_top,
    "4-slanted-open": four_slanted_open,
    "4-looped": four_looped,
    "4-crossed": four_crossed,
    "4-short-left": four_short_left,
    "5-flat": five_flat,
    "5-deep": five_deep,
    "5-detached-bar": five_detached_bar,
    "6-small-loop": six_small_loop,
    "6-spiral": six_spiral,
    "7-crossed-hook": seven_crossed_hook,
    "7-curved": seven_curved,
    "7-wavy": seven_wavy,
    "8-circles": eight_circles,
    "8-s-closed": eight_s_closed,
    "9-q": nine_q,
    "9-tail-right": nine_tail_right,
    "9-hooked": nine_hooked,
    "9-open-hook": nine_open_hook,
}
"""Every held-out style by name "digit-style"; the digit is the name's first character."""


def wide_pose(glyph: Glyph, r: np.random.Generator, jitter: float) -> Glyph:
    """A writer's hand with more slant either way than strokes.pose gives (back-hand to italic),
    its own proportions (the middle: a 4's bar, a 9's loop, an 8's waist, higher or lower), from
    narrow and tall to wide and short, and in 1 of 4 a slight tremor."""
    gamma = float(np.exp(r.uniform(np.log(0.8), np.log(1.25))))
    glyph = tuple(_proportioned(s, gamma) for s in glyph)
    if r.random() < 0.25:
        amount = r.uniform(0.004, 0.01)
        glyph = tuple(tremor(s, r, amount) for s in glyph)
    slant = r.uniform(-0.3, 0.6)
    width = float(np.exp(r.uniform(np.log(0.55), np.log(1.6))))
    return posed(glyph, r, jitter, slant, width, r.uniform(-12, 12))


def _proportioned(stroke: np.ndarray, gamma: float) -> np.ndarray:
    """(P, 2) -> (P, 2), heights y in [0, 1] bent to y ** gamma: the middle moves, the ends stay."""
    out = stroke.copy()
    y = np.clip(out[:, 1], 0.0, 1.0)
    out[:, 1] += y**gamma - y
    return out


def tremor(stroke: np.ndarray, r: np.random.Generator, amount: float) -> np.ndarray:
    """(P, 2) -> (Q, 2): an unsteady hand, the line shaking sideways by about `amount` (in glyph
    heights) some 20 to 40 times per glyph height of stroke."""
    seg = np.hypot(*np.diff(stroke, axis=0).T)  # (P-1,)
    along = np.concatenate([[0.0], np.cumsum(seg)])  # (P,) arc length
    if along[-1] <= 0.0:
        return stroke
    at = np.linspace(0.0, along[-1], max(2, int(along[-1] / 0.004) + 1))  # (Q,)
    xy = np.stack([np.interp(at, along, stroke[:, 0]), np.interp(at, along, stroke[:, 1])], 1)
    tangent = np.gradient(xy, axis=0)  # (Q, 2)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(*normal.T), 1e-9)[:, None]
    shake = np.zeros(len(at))
    for _ in range(2):
        shake += np.sin(2 * np.pi * r.uniform(20, 40) * at + r.uniform(0, 2 * np.pi))
    shake *= amount / 2 * r.uniform(0.6, 1.0, len(at))
    return xy + normal * shake[:, None]
