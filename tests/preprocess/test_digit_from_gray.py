"""digit_from_gray against the plain pipeline in reference.py: the same bits always.

digit_from_gray decides from histograms of levels and cleans the ink's box alone; the reference
makes floats of the whole image and takes every median with np.median. Every input, digit or
not, must give the same array bit for bit, or the same error with the same message.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from server import preprocess
from server.preprocess import PreprocessError, decode, digit_from_gray, stages
from server.synth.proxy import stroke_ink
from server.synth.render import page
from server.synth.strokes import GLYPHS
from tests.preprocess import reference
from tests.preprocess.test_preprocess import draw, encode, pad_drawing, paper_photo, random_upload

# --- comparing -----------------------------------------------------------------------------


def outcome(function: Callable[[np.ndarray], object], gray: np.ndarray) -> object:
    """The digit, or the error's type and message: what the API would send either way."""
    before = np.array(gray, copy=True)
    try:
        result: object = function(gray)
    except PreprocessError as error:
        result = (type(error), str(error))
    np.testing.assert_array_equal(gray, before)  # the input is never written to
    return result


def assert_bits(got: object, expected: np.ndarray) -> None:
    assert isinstance(got, np.ndarray), f"expected an array, got {got}"
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bits: tells -0.0 from 0.0, unlike ==


def assert_same(gray: np.ndarray) -> object:
    """digit_from_gray(gray) and the pictures of stages(gray) are the reference's results, bit
    for bit (or the same error)."""
    got, expected = outcome(digit_from_gray, gray), outcome(reference.digit_from_gray, gray)
    staged = outcome(stages, gray)
    if isinstance(expected, np.ndarray):
        assert_bits(got, expected)
        assert isinstance(staged, preprocess.Stages), f"expected stages, got {staged}"
        ink = reference.to_ink(gray)
        assert_bits(staged.ink, ink)
        assert_bits(staged.cleaned, reference.suppress_noise(ink))
        assert_bits(staged.digit, expected)
    else:
        assert got == expected
        assert staged == expected
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
    np.testing.assert_array_equal(preprocess.UNIT, reference.UNIT)
    np.testing.assert_array_equal(preprocess.INVERTED, np.subtract(1.0, reference.UNIT))
    assert np.all(np.diff(preprocess.UNIT) > 0)
    assert np.all(np.diff(preprocess.INVERTED) < 0)


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
