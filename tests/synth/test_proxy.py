"""The handwriting proxy: seeded, labelled right, the API's own input, and readable as digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.cnn import load_model
from server.preprocess import to_mnist
from server.synth import GLYPHS, font_set, page, png, stroke_set
from server.synth.fonts import available_fonts
from server.synth.proxy import stroke_ink, stroke_sample
from server.synth.render import ink_from_strokes
from server.synth.strokes import label_of, line
from server.training.evaluation import predict_logits

WEIGHTS = Path(__file__).resolve().parents[2] / "model_weights" / "mnist_cnn.npz"


def test_same_seed_same_set_and_slices_stand_alone() -> None:
    a, b = stroke_set(30, seed=3), stroke_set(30, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    # sample i depends on (seed, i) alone: the first ten of a longer set are the same ten
    np.testing.assert_array_equal(stroke_set(10, seed=3).images, a.images[:10])
    assert not np.array_equal(stroke_set(30, seed=4).images, a.images)


def test_every_style_in_turn_with_its_label() -> None:
    n = 2 * len(GLYPHS)
    s = stroke_set(n, seed=0)
    assert sorted(set(s.style)) == sorted(GLYPHS)
    assert [label_of(str(style)) for style in s.style] == s.labels.tolist()
    assert set(s.labels.tolist()) == set(range(10))
    assert s.images.shape == (n, 28, 28)
    assert s.images.dtype == np.float32
    assert s.images.min() >= 0.0
    assert s.images.max() == pytest.approx(1.0)


def test_input_is_what_the_api_builds_from_the_png() -> None:
    """via_png=False skips the file but not the preprocessing: PNG is lossless."""
    for i in range(12):
        with_file, label, style = stroke_sample(i, 5, tuple(GLYPHS))
        without, label2, style2 = stroke_sample(i, 5, tuple(GLYPHS), via_png=False)
        np.testing.assert_array_equal(with_file, without)
        assert (label, style) == (label2, style2)


def test_page_polarity_and_size_vary_but_the_digit_survives() -> None:
    rng = np.random.default_rng(1)
    ink = ink_from_strokes([line((0.0, 0.0), (0.6, 0.0), (0.2, 1.0))], 60, 0.1)
    pages = [page(ink, rng) for _ in range(40)]
    light = [float(np.median(p)) > 127 for p in pages]
    assert 5 < sum(light) < 35, "both dark-on-light and light-on-dark pages"
    assert len({p.shape for p in pages}) > 20
    inputs = [to_mnist(png(p)) for p in pages]
    for x in inputs[1:]:  # the same 7 every time, up to the page's noise and position
        assert np.abs(x - inputs[0]).mean() < 0.08


def test_pen_width_ranges_from_thin_to_thick() -> None:
    rng = np.random.default_rng(2)
    ink = [stroke_ink("1-stick", rng) for _ in range(60)]
    coverage = [float((i > 0.5).sum()) / i.shape[0] for i in ink]  # ink pixels per row: width
    assert min(coverage) < 3 < 12 < max(coverage)


def test_unknown_style_is_named() -> None:
    with pytest.raises(KeyError, match="1-fancy"):
        stroke_set(3, styles=("1-fancy",))


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="no shipped weights")
def test_a_trained_network_reads_the_plain_styles() -> None:
    """An independent reader: the MNIST-trained model reads the styles MNIST has."""
    plain = ("0-oval", "2-plain", "3-round", "4-closed", "6-curved", "7-plain", "8-loops")
    s = stroke_set(140, seed=11, styles=plain)
    model = load_model(WEIGHTS).model
    accuracy = float((predict_logits(model, s.images).argmax(axis=1) == s.labels).mean())
    assert accuracy > 0.85, accuracy


@pytest.mark.skipif(not available_fonts(), reason="no handwriting fonts installed (fonts.py)")
def test_font_digits_in_turn() -> None:
    f = font_set(40, seed=0)
    assert f.labels.tolist() == [i % 10 for i in range(40)]
    assert all(str(style).startswith("fonts/") for style in f.style)
    assert f.images.shape == (40, 28, 28)


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="no shipped weights")
def test_the_shipped_model_reads_other_writers_styles() -> None:
    """Every stroke style, the European 1 and open-top 4 included (measured: 97.8% of 2,400)."""
    s = stroke_set(480, seed=1000)
    model = load_model(WEIGHTS).model
    correct = predict_logits(model, s.images).argmax(axis=1) == s.labels
    assert correct.mean() > 0.95, float(correct.mean())
    european = s.style == "1-european"
    assert correct[european].mean() >= 0.5, float(correct[european].mean())
