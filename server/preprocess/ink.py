"""Where the ink is: its polarity, the level noise stays under, lone specks; found from the frame.

The frame (the outer 5%) shows the paper or canvas: its median is the background and its spread
the noise. `ink_rule` decides from it once per image, and `ink_box` applies the rule to the
ink's bounding box alone: for 8-bit levels by comparing levels and searching the mask's bytes,
for floats by the rows' and columns' extremes; only the box is ever made float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from server.preprocess.decoding import as_unit
from server.preprocess.digit import crop_to_ink
from server.preprocess.errors import NO_DIGIT, NoDigitFound

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


@dataclass(frozen=True)
class InkRule:
    """What the frame decides for the whole image: which way ink runs, and where noise ends."""

    invert: bool  # dark ink on light paper: ink is 1 - gray
    cut: np.float32  # a pixel is ink where its ink exceeds this


def ink_rule(gray: np.ndarray) -> InkRule:
    """(H, W) gray (uint8 levels or float32 in [0, 1]) -> its InkRule; NoDigitFound when
    nothing stands out from the background."""
    frame = Frame(gray)
    darkest, lightest = gray.min(), gray.max()
    invert = frame.inverted(_ink_value(darkest, False), _ink_value(lightest, False))
    cut = frame.ink_cut(invert, _ink_value(darkest if invert else lightest, invert))
    if cut is None:
        raise NoDigitFound(NO_DIGIT)
    return InkRule(invert, cut)


def ink_box(gray: np.ndarray, rule: InkRule) -> np.ndarray:
    """(H, W) gray -> (h, w) float32: crop_to_ink(clean(ink_map(gray, invert), cut)), the same
    bits, but only the box holding the ink is made float."""
    if gray.dtype == np.uint8:
        return _levels_box(gray, rule.invert, rule.cut)
    return _floats_box(gray, rule.invert, rule.cut)


def _floats_box(gray: np.ndarray, invert: bool, cut: np.float32) -> np.ndarray:
    """ink_box for float gray: the box from the rows' and columns' extremes, then cleaned."""
    # A pixel is ink when ink > cut; a column or row holds ink when its strongest pixel does.
    extreme = np.min if invert else np.max
    cols = _span(ink_map(extreme(gray, axis=0), invert) > cut)
    if cols is None:
        raise NoDigitFound(NO_DIGIT)
    band = gray[:, cols[0] : cols[1]]  # (H, W) -> (H, w): rows need looking at only here
    rows = _span(ink_map(extreme(band, axis=1), invert) > cut)
    assert rows is not None, "a column holds ink, so a row does"
    box = band[rows[0] : rows[1]]  # (H, w) -> (h, w), the ink's bounding box
    # The speck filter sees every neighbour it would see on the whole image: outside the box
    # nothing is ink. So the result equals the full-frame steps' result, bit for bit.
    return crop_to_ink(clean(ink_map(box, invert), cut))


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


def as_gray(gray: np.ndarray) -> np.ndarray:
    """uint8 levels stay; any other gray becomes float32, as every float step computes in it."""
    gray = np.asarray(gray)
    return gray if gray.dtype == np.uint8 else gray.astype(np.float32, copy=False)


def _same(values: np.ndarray) -> np.ndarray:
    return values


def ink_map(gray: np.ndarray, invert: bool) -> np.ndarray:
    """Gray (uint8 levels or float in [0, 1]) -> float32 ink: 1 - gray when inverted."""
    if gray.dtype == np.uint8:  # UNIT[gray] or INVERTED[gray], in 2-3 passes instead of a gather
        ink = as_unit(gray)  # a new array for levels, so in place from here
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


def _levels_box(gray: np.ndarray, invert: bool, cut: np.float32) -> np.ndarray:
    """crop_to_ink(clean(ink_map(gray, invert), cut)) for uint8 levels: the same bits, but one
    pass of levels finds the ink and its box, and only the box is made float."""
    above = _levels_above(gray, invert, cut)  # (H, W) bool, a new array
    rows = _row_span(above)
    if rows is None:
        raise NoDigitFound(NO_DIGIT)
    cols = _span(np.asarray(above[rows[0] : rows[1]].any(axis=0)))
    assert cols is not None, "a row holds ink, so a column does"
    box = slice(*rows), slice(*cols)  # (H, W) -> (h, w): every edge row and column holds ink
    cleaned = ink_map(gray[box], invert)  # a new float32 array, so in place from here
    cleaned -= cut  # what stands out above background and noise, as clean computes it
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
        level = self.median(lambda gray: ink_map(gray, invert))
        noise = MAD_TO_SIGMA * self.median(lambda gray: np.abs(ink_map(gray, invert) - level))
        peak -= level
        threshold = max(NOISE_SIGMAS * noise, RELATIVE_FLOOR * peak)
        if peak < MIN_CONTRAST or peak <= threshold:
            return None
        return np.float32(level + threshold)


def clean(ink: np.ndarray, cut: np.float32) -> np.ndarray:
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
