"""digit_from_gray against the implementation it replaced, kept here verbatim: same bits always.

The reference below is server/preprocess.py's ink-map and geometry steps (now in
server/preprocess/) as they were before digit_from_gray learnt to work on 8-bit levels and bool
masks (commit 2bc0f01). Every input, digit or not, must give the same array bit for bit, or the
same error with the same message.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from server import preprocess
from server.preprocess import PreprocessError, decode, digit_from_gray
from server.synth.proxy import stroke_ink
from server.synth.render import page
from server.synth.strokes import GLYPHS
from tests.preprocess.test_preprocess import draw, encode, pad_drawing, paper_photo, random_upload

# --- the reference: the previous implementation, copied unchanged --------------------------

UNIT = np.arange(256, dtype=np.float32) * np.float32(1 / 255)
INVERTED = np.subtract(1.0, UNIT, dtype=np.float32)
NO_DIGIT = preprocess.NO_DIGIT


def ref_digit_from_gray(gray: np.ndarray) -> np.ndarray:
    gray = ref_as_gray(gray)
    frame = RefFrame(gray)
    invert = frame.inverted(*ref_extremes(gray))
    cut = frame.ink_cut(invert, ref_ink_peak(gray, invert))
    if cut is None:
        raise preprocess.NoDigitFound(NO_DIGIT)
    extreme = np.min if invert else np.max
    cols = ref_span(ref_ink(extreme(gray, axis=0), invert) > cut)
    if cols is None:
        raise preprocess.NoDigitFound(NO_DIGIT)
    band = gray[:, cols[0] : cols[1]]
    rows = ref_span(ref_ink(extreme(band, axis=1), invert) > cut)
    assert rows is not None, "a column holds ink, so a row does"
    box = band[rows[0] : rows[1]]
    return ref_center_by_mass(ref_fit_box(ref_crop_to_ink(ref_clean(ref_ink(box, invert), cut))))


def ref_unit(levels: np.ndarray) -> np.ndarray:
    unit = levels.astype(np.float32)
    unit *= np.float32(1 / 255)
    return unit


def ref_frame(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    k = max(1, round(min(h, w) * preprocess.BORDER_FRACTION))
    if 2 * k >= min(h, w):
        return image.ravel()
    sides = (
        image[:k].ravel(),
        image[-k:].ravel(),
        image[k:-k, :k].ravel(),
        image[k:-k, -k:].ravel(),
    )
    return np.concatenate(sides)


def ref_as_gray(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray)
    return gray if gray.dtype == np.uint8 else gray.astype(np.float32, copy=False)


def ref_same(values: np.ndarray) -> np.ndarray:
    return values


def ref_ink(gray: np.ndarray, invert: bool) -> np.ndarray:
    if gray.dtype == np.uint8:
        ink = ref_unit(gray)
        return np.subtract(1.0, ink, out=ink) if invert else ink
    gray = np.asarray(gray, dtype=np.float32)
    return np.subtract(1.0, gray, dtype=np.float32) if invert else gray


def ref_extremes(gray: np.ndarray) -> tuple[float, float]:
    low, high = gray.min(), gray.max()
    if gray.dtype == np.uint8:
        return float(UNIT[low]), float(UNIT[high])
    return float(low), float(high)


def ref_ink_peak(gray: np.ndarray, invert: bool) -> float:
    extreme = gray.min() if invert else gray.max()
    return float(ref_ink(np.asarray([extreme]), invert)[0])


def ref_span(mask: np.ndarray) -> tuple[int, int] | None:
    where = np.flatnonzero(mask)
    return (int(where[0]), int(where[-1]) + 1) if where.size else None


def ref_middle_mean(low: float, high: float) -> float:
    return float((np.float32(low) + np.float32(high)) / np.float32(2))


class RefFrame:
    def __init__(self, gray: np.ndarray) -> None:
        pixels = ref_frame(gray)
        self.counts = np.bincount(pixels, minlength=256) if gray.dtype == np.uint8 else None
        self.pixels = None if self.counts is not None else np.asarray(pixels, dtype=np.float32)

    def median(self, f: Callable[[np.ndarray], np.ndarray] = ref_same) -> float:
        if self.pixels is not None:
            return float(np.median(f(self.pixels)))
        assert self.counts is not None
        values = f(UNIT)
        order = np.argsort(values, kind="stable")
        ends = np.cumsum(self.counts[order])
        n = int(ends[-1])
        low, high = values[order[np.searchsorted(ends, [(n - 1) // 2, n // 2], side="right")]]
        return ref_middle_mean(low, high)

    def inverted(self, darkest: float, lightest: float) -> bool:
        background = self.median()
        darker = background - darkest
        lighter = lightest - background
        decisive = abs(darker - lighter) >= preprocess.POLARITY_MARGIN
        return darker > lighter if decisive else background >= 0.5

    def ink_cut(self, invert: bool, peak: float) -> np.float32 | None:
        level = self.median(lambda gray: ref_ink(gray, invert))
        noise = preprocess.MAD_TO_SIGMA * self.median(
            lambda gray: np.abs(ref_ink(gray, invert) - level)
        )
        peak -= level
        threshold = max(preprocess.NOISE_SIGMAS * noise, preprocess.RELATIVE_FLOOR * peak)
        if peak < preprocess.MIN_CONTRAST or peak <= threshold:
            return None
        return np.float32(level + threshold)


def ref_clean(ink: np.ndarray, cut: np.float32) -> np.ndarray:
    cleaned = ink - cut
    np.maximum(cleaned, 0.0, out=cleaned)
    cleaned = ref_drop_isolated(cleaned)
    strongest = float(cleaned.max())
    if strongest <= 0.0:
        return np.zeros_like(ink)
    cleaned /= np.float32(strongest)
    return cleaned


def ref_drop_isolated(ink: np.ndarray) -> np.ndarray:
    h, w = ink.shape
    marked = np.zeros((h + 2, w + 2), dtype=bool)
    np.greater(ink, 0, out=marked[1:-1, 1:-1])
    beside = marked[:, :-2] | marked[:, 2:]
    in_row = beside | marked[:, 1:-1]
    has_neighbour = in_row[:-2] | in_row[2:] | beside[1:-1]
    ink *= has_neighbour
    return ink


def ref_crop_to_ink(ink: np.ndarray) -> np.ndarray:
    inked = ink > 0
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise preprocess.NoDigitFound(NO_DIGIT)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def ref_fit_box(ink: np.ndarray, size: int = preprocess.DIGIT_SIDE) -> np.ndarray:
    h, w = ink.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    source = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))
    box = np.asarray(source.resize((new_w, new_h), resample), dtype=np.float32)
    box = np.clip(box, 0.0, 1.0)
    peak = float(box.max())
    if peak <= 0.0:
        raise preprocess.NoDigitFound("no digit found in the image; the ink vanished when scaled")
    return box / peak


def ref_center_by_mass(box: np.ndarray, size: int = preprocess.MNIST_SIDE) -> np.ndarray:
    h, w = box.shape
    if h > size or w > size:
        raise ValueError(f"the digit box is {h}x{w} pixels; expected at most {size}x{size}")
    total = float(box.sum())
    if total <= 0.0:
        raise preprocess.NoDigitFound("no digit found in the image; the digit box is empty")
    centre = (size - 1) / 2
    cy = float(box.sum(axis=1) @ np.arange(h)) / total
    cx = float(box.sum(axis=0) @ np.arange(w)) / total
    top = min(max(math.floor(centre - cy + 0.5), 0), size - h)
    left = min(max(math.floor(centre - cx + 0.5), 0), size - w)
    field = np.zeros((size, size), dtype=np.float32)
    field[top : top + h, left : left + w] = box
    return field


# --- comparing -----------------------------------------------------------------------------


def outcome(function: Callable[[np.ndarray], np.ndarray], gray: np.ndarray) -> object:
    """The digit, or the error's type and message: what the API would send either way."""
    before = np.array(gray, copy=True)
    try:
        result: object = function(gray)
    except PreprocessError as error:
        result = (type(error), str(error))
    np.testing.assert_array_equal(gray, before)  # the input is never written to
    return result


def assert_same(gray: np.ndarray) -> object:
    """digit_from_gray(gray) is the reference's result, bit for bit (or the same error)."""
    got, expected = outcome(digit_from_gray, gray), outcome(ref_digit_from_gray, gray)
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray), f"expected a digit, got {got}"
        assert got.dtype == expected.dtype
        assert got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()  # bits: tells -0.0 from 0.0, unlike ==
    else:
        assert got == expected
    return expected


def variants(levels: np.ndarray) -> list[np.ndarray]:
    """The same page as 8-bit levels, inverted, as floats (float32, float64) and as views."""
    unit = levels.astype(np.float32) / np.float32(255)
    return [
        levels,
        255 - levels,
        unit,
        unit.astype(np.float64),
        1.0 - unit,
        np.asfortranarray(levels),  # not C-contiguous
        levels.T,  # a transposed view
        levels[::2, ::-1],  # strided, reversed
    ]


def pad_levels(seed: int) -> np.ndarray:
    """What the route gets from the pad: its RGBA PNG decoded to levels."""
    return decode(encode(pad_drawing(np.random.default_rng(seed))))


# --- corpora -------------------------------------------------------------------------------


def test_level_tables_are_strictly_monotonic() -> None:
    """The fast path turns `ink > cut` into one comparison of levels; that needs this."""
    np.testing.assert_array_equal(preprocess.UNIT, UNIT)
    np.testing.assert_array_equal(preprocess.INVERTED, INVERTED)
    assert np.all(np.diff(UNIT) > 0)
    assert np.all(np.diff(INVERTED) < 0)


@pytest.mark.parametrize("seed", range(12))
def test_pad_drawings(seed: int) -> None:
    levels = pad_levels(seed)
    assert levels.dtype == np.uint8
    assert levels.shape == (280, 280)
    for gray in variants(levels):
        assert isinstance(assert_same(gray), np.ndarray)


def test_the_benchmarks_pad_digit() -> None:
    from scripts.pad_digit import pad_image

    levels = decode(encode(pad_image()))
    assert isinstance(assert_same(levels), np.ndarray)


def test_random_uploads() -> None:
    """Strokes of any size and polarity, grain, specks, alpha, 16-bit and JPEG, decoded."""
    rng = np.random.default_rng(7)
    kinds = set()
    for _ in range(150):
        gray = decode(random_upload(rng))
        kinds.add(gray.dtype.name)
        assert_same(gray)
    assert kinds == {"uint8", "float32"}


@pytest.mark.parametrize("style", sorted(GLYPHS)[::3])
def test_synthetic_digits(style: str) -> None:
    rng = np.random.default_rng([11, len(style)])
    levels = page(stroke_ink(style, rng), rng)
    for gray in variants(levels)[:5]:
        assert_same(gray)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_photos_and_drawings(fmt: str) -> None:
    for seed in range(3):
        assert_same(decode(encode(paper_photo(seed=seed), fmt)))
        assert_same(decode(encode(paper_photo(seed=seed, digit=False), fmt)))
    for shape in ("zero", "one", "seven", "slash"):
        img = draw(shape, (280, 280))
        assert_same(decode(encode(img, fmt)))
        assert_same(decode(encode(img, fmt, quality=20)) if fmt == "JPEG" else np.asarray(img))


def test_edge_cases() -> None:
    """Tiny, blank, one-pixel and two-pixel ink, ink on the frame, specks, huge, odd floats."""
    rng = np.random.default_rng(3)
    cases: list[np.ndarray] = []
    for shape in [(1, 1), (1, 7), (2, 2), (3, 3), (3, 5), (4, 4), (5, 9), (9, 5), (30, 30)]:
        for value in (0, 1, 128, 255):
            blank = np.full(shape, value, dtype=np.uint8)
            cases.append(blank)
            if blank.size > 1:
                dot = blank.copy()
                dot[shape[0] // 2, shape[1] // 2] = 255 - value
                cases.append(dot)
                pair = dot.copy()
                pair.flat[-1] = 255 - value
                cases.append(pair)
                cases.append(rng.integers(0, 256, shape, dtype=np.uint8))
    page_ = np.zeros((60, 80), dtype=np.uint8)
    page_[10:50, 30:34] = 255  # a stroke
    cases.append(page_)
    speck = page_.copy()
    speck[2, 2] = speck[57, 78] = 255  # lone specks, outside the stroke's box: box shrinks
    cases.append(speck)
    inside = page_.copy()
    inside[12, 20] = 255  # a speck inside the rows of the stroke
    cases.append(inside)
    edge = np.zeros((50, 50), dtype=np.uint8)
    edge[:, :6] = 200  # ink on the frame itself
    cases.append(edge)
    diag = np.zeros((40, 40), dtype=np.uint8)
    np.fill_diagonal(diag, 255)  # touching only at corners: every pixel has a neighbour
    cases.append(diag)
    checker = (np.indices((40, 40)).sum(axis=0) % 2 * 255).astype(np.uint8)
    cases.append(checker)
    grid = np.zeros((41, 41), dtype=np.uint8)
    grid[::2, ::2] = 255  # lone specks only: nothing is left after the speck filter
    cases.append(grid)
    wide = np.zeros((40, 1000), dtype=np.uint8)
    wide[18:22, 5:995] = 180  # scaled to 20x1: a line one pixel high
    cases.append(wide)
    faint = np.full((64, 64), 100, dtype=np.uint8)
    faint[20:44, 30:33] = 120  # contrast under MIN_CONTRAST: no digit
    cases.append(faint)
    huge = np.full((2400, 1800), 230, dtype=np.uint8)
    huge[300:2100, 800:1000] = 20
    huge += rng.integers(0, 4, huge.shape, dtype=np.uint8)
    cases.append(huge)
    for levels in cases:
        for gray in variants(levels)[:5]:
            assert_same(gray)
    unit = page_.astype(np.float32) / 255
    for odd in (unit * 1.5 - 0.2, unit * 0.5 + 0.4, unit.astype(np.float16)):
        assert_same(odd)


def test_noisy_frames() -> None:
    """Grain and JPEG noise make the frame's histogram wide: the general medians."""
    rng = np.random.default_rng(5)
    for seed in range(6):
        levels = pad_levels(seed).astype(np.int16)
        noisy = levels + rng.normal(0, [1, 3, 8, 20, 40, 2][seed], levels.shape).astype(np.int16)
        gray = np.clip(noisy, 0, 255).astype(np.uint8)
        for current in (gray, decode(encode(Image.fromarray(gray), "JPEG", quality=30))):
            for variant in variants(current)[:3]:
                assert_same(variant)


@st.composite
def pages(draw_: st.DrawFn) -> np.ndarray:
    """A small page: background, grain, a few rectangles of ink, specks; levels or floats."""
    h, w = draw_(st.integers(1, 48)), draw_(st.integers(1, 48))
    background = draw_(st.integers(0, 255))
    seed = draw_(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    gray = np.full((h, w), background, dtype=np.int16)
    grain = draw_(st.sampled_from([0, 0, 1, 3, 10, 40]))
    gray += rng.integers(-grain, grain + 1, (h, w), dtype=np.int16)
    for _ in range(draw_(st.integers(0, 4))):
        top, left = draw_(st.integers(0, h - 1)), draw_(st.integers(0, w - 1))
        bottom, right = draw_(st.integers(top, h)), draw_(st.integers(left, w))
        gray[top : bottom + 1, left : right + 1] = draw_(st.integers(0, 255))
    for _ in range(draw_(st.integers(0, 3))):
        gray[draw_(st.integers(0, h - 1)), draw_(st.integers(0, w - 1))] = draw_(
            st.integers(0, 255)
        )
    levels = np.clip(gray, 0, 255).astype(np.uint8)
    if draw_(st.booleans()):
        return levels
    return levels.astype(np.float32) * np.float32(1 / 255)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(gray=pages())
def test_any_small_page(gray: np.ndarray) -> None:
    assert_same(gray)


def test_output_arrays_are_fresh_and_writable() -> None:
    """Callers may scale the digit in place: it must share memory with nothing."""
    levels = pad_levels(0)
    first, second = digit_from_gray(levels), digit_from_gray(levels)
    assert first.flags.writeable
    assert first.flags.c_contiguous
    assert not np.shares_memory(first, second)
    assert not np.shares_memory(first, levels)
