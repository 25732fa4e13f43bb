"""Pen-stroke digits mixed into training: at most a tenth, labelled, and MNIST's pixel format."""

from __future__ import annotations

import numpy as np

from server.synth import stroke_set
from server.train import TrainConfig, with_strokes


def test_strokes_are_a_tenth_at_most_and_labelled_by_their_style() -> None:
    images = np.zeros((90, 28, 28), dtype=np.uint8)
    labels = np.zeros(90, dtype=np.uint8)
    x, y = with_strokes(images, labels, TrainConfig(strokes=6000, seed=2))
    assert x.shape == (100, 28, 28)
    assert x.dtype == np.uint8
    assert y.shape == (100,)
    expected = stroke_set(10, seed=2, via_png=False)
    np.testing.assert_array_equal(y[90:], expected.labels)
    np.testing.assert_array_equal(x[90:], np.rint(expected.images * 255).astype(np.uint8))
    np.testing.assert_array_equal(x[:90], images)


def test_no_strokes_leaves_the_set_alone() -> None:
    images = np.ones((50, 28, 28), dtype=np.uint8)
    labels = np.arange(50)
    x, y = with_strokes(images, labels, TrainConfig(strokes=0))
    assert x is images
    assert y is labels
