"""The committed weights file: it loads, has the promised shape, is small, and is accurate.

Not marked slow: CI runs it. The accuracy check needs MNIST ($MNIST_DIR); when MNIST_DIR is
set the files must be there, so a missing or broken dataset fails instead of skipping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.cnn import Sequential, load_model
from server.training.mnist import Mnist
from tests.mnist_kit import mnist_accuracy

WEIGHTS = Path(__file__).resolve().parents[1] / "model_weights" / "mnist_cnn.npz"
MAX_BYTES = 4_000_000  # 4 MB: the default model's budget
MIN_ACCURACY = 0.995  # the default model reads at least 99.5% of MNIST's test set


@pytest.fixture(scope="module")
def shipped() -> Sequential:
    assert WEIGHTS.is_file(), f"{WEIGHTS} is missing: train it with `convscope train`"
    return load_model(WEIGHTS).model


def conv_blocks(model: Sequential) -> int:
    kinds = [layer.kind for layer in model]
    return sum(kinds[i : i + 3] == ["conv2d", "relu", "maxpool2d"] for i in range(len(kinds) - 2))


def test_weights_file_is_small() -> None:
    assert WEIGHTS.is_file(), f"{WEIGHTS} is missing"
    size = WEIGHTS.stat().st_size
    assert size <= MAX_BYTES, f"{WEIGHTS} is {size} bytes, more than {MAX_BYTES}"


def test_shipped_model_architecture(shipped: Sequential) -> None:
    assert conv_blocks(shipped) >= 2, [layer.kind for layer in shipped]
    assert shipped.input_shape == (28, 28, 1)
    assert shipped.output_shapes[-1] == (10,)
    for key, value in shipped.parameters().items():
        assert np.isfinite(value).all(), key


def test_shipped_metadata() -> None:
    metadata = load_model(WEIGHTS).metadata
    assert metadata["test_accuracy"] >= MIN_ACCURACY
    matrix = np.array(metadata["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == 10000


def test_shipped_model_accuracy_on_mnist_test_set(shipped: Sequential, mnist: Mnist) -> None:
    accuracy = mnist_accuracy(shipped, mnist)
    assert len(mnist.test_images) == 10000
    assert accuracy >= MIN_ACCURACY, f"test accuracy {accuracy:.4f} < {MIN_ACCURACY}"
    # the file's own claim agrees with the measurement (up to a couple of near-ties)
    assert load_model(WEIGHTS).metadata["test_accuracy"] == pytest.approx(accuracy, abs=2e-4)
