"""Training additions: pen-stroke digits (at most a tenth, labelled, MNIST's format), --init."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from server.cnn import save_model
from server.cnn.architectures import mnist_cnn
from server.synth import stroke_set
from server.training.mnist import Mnist
from server.training.train import TrainConfig, train, with_strokes


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


def test_init_starts_from_the_files_weights(
    make_digits: Callable[..., tuple[np.ndarray, np.ndarray]], tmp_path: Path
) -> None:
    """With a vanishing learning rate, training from --init keeps the file's weights."""
    train_x, train_y = make_digits(60, seed=1)
    test_x, test_y = make_digits(20, seed=2)
    data = Mnist(train_x, train_y, test_x, test_y, checksums={})
    start = mnist_cnn(seed=9)
    save_model(tmp_path / "start.npz", start, {})
    config = TrainConfig(
        epochs=1,
        lr=1e-12,
        min_lr=1e-12,
        limit=40,
        validation=20,
        strokes=0,
        init=str(tmp_path / "start.npz"),
    )
    model, metadata = train(data, config, show_progress=False)
    for key, value in start.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[key], value, atol=1e-9, err_msg=key)
    assert metadata["config"]["init"] == str(tmp_path / "start.npz")
    fresh, _ = train(data, dataclasses.replace(config, init=""), show_progress=False)
    assert not np.array_equal(
        fresh.state_dict()["conv1.weight"], start.state_dict()["conv1.weight"]
    )
