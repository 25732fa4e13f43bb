"""Outlier exposure in training: the drawings it uses, its loss, and what it does to a network."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from server.cnn import log_softmax, softmax_cross_entropy, uniform_cross_entropy
from server.synth.nondigits import nondigits
from server.training.evaluation import predict_logits
from server.training.mnist import Mnist
from server.training.train import OUTLIER_SEED, Run, TrainConfig, outlier_images, train
from tests.cnn.test_layers_gradcheck import numerical_grad


def test_no_outliers_by_default() -> None:
    assert outlier_images(TrainConfig()) is None


def test_outliers_are_non_digits_of_a_seed_apart_from_the_measurements() -> None:
    images = outlier_images(TrainConfig(outliers=6, seed=3))
    assert images is not None
    assert images.shape == (6, 28, 28)
    assert images.dtype == np.uint8
    drawn = np.stack([d.image for d in nondigits(6, seed=OUTLIER_SEED + 3)])
    np.testing.assert_array_equal(images, np.rint(drawn * 255).astype(np.uint8))
    measured = np.stack([d.image for d in nondigits(6, seed=1)])  # scripts/digit_score_table.py
    assert not np.array_equal(images, np.rint(measured * 255).astype(np.uint8))


def run_with(config: TrainConfig) -> Run:
    return Run.start(config, 64)


def test_a_run_starts_with_its_configs_outlier_drawings() -> None:
    """Run.start draws them, so every loop (convscope train, a job) trains on the same ones."""
    config = TrainConfig(outliers=5, seed=2)
    np.testing.assert_array_equal(run_with(config).outliers, outlier_images(config))
    assert run_with(TrainConfig()).outliers is None


def test_loss_adds_the_weighted_pull_to_uniform_of_the_rows_after_the_digits() -> None:
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(0, 2, (7, 10)), rng.integers(0, 10, 4)
    run = run_with(TrainConfig(outlier_weight=0.3))
    loss, grad = run.loss(logits, labels)
    expected = softmax_cross_entropy(logits[:4], labels)[0]
    expected += 0.3 * uniform_cross_entropy(logits[4:])[0]
    assert loss == pytest.approx(expected)
    numeric = numerical_grad(lambda: run.loss(logits, labels)[0], logits)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_without_outlier_rows_the_loss_is_the_digits_alone() -> None:
    rng = np.random.default_rng(3)
    logits, labels = rng.normal(0, 2, (5, 10)), rng.integers(0, 10, 5)
    loss, grad = run_with(TrainConfig()).loss(logits, labels)
    expected_loss, expected_grad = softmax_cross_entropy(logits, labels)
    assert loss == expected_loss
    np.testing.assert_array_equal(grad, expected_grad)


def entropy(logits: np.ndarray) -> np.ndarray:
    log_probs = log_softmax(logits)
    return -(np.exp(log_probs) * log_probs).sum(axis=1)  # (N,)


def test_exposure_leaves_unseen_non_digits_read_as_no_digit_in_particular(
    make_digits: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    """The same run with and without outliers: non-digits it never saw (another seed) get a
    flatter reading (1.3-1.5 nats of entropy without, about 2.04 with; uniform is 2.30)."""
    train_x, train_y = make_digits(700, seed=1)
    test_x, test_y = make_digits(200, seed=2)
    data = Mnist(train_x, train_y, test_x, test_y, checksums={})
    config = TrainConfig(arch="tiny", epochs=8, validation=100, strokes=0, augment=False, seed=4)
    plain, plain_meta = train(data, config, show_progress=False)
    exposed, exposed_meta = train(
        data, dataclasses.replace(config, outliers=300), show_progress=False
    )
    unseen = np.stack([d.image for d in nondigits(100, seed=11)])
    flat_plain = entropy(predict_logits(plain, unseen)).mean()
    flat_exposed = entropy(predict_logits(exposed, unseen)).mean()
    assert flat_exposed > flat_plain + 0.3, (flat_plain, flat_exposed)
    # it still learnt the digits (chance is 0.1; MNIST's figures are the shipped model's tests)
    assert exposed_meta["test_accuracy"] > 0.5 < plain_meta["test_accuracy"]
