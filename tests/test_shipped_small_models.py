"""The small committed models beside the default: each is its preset, small, and as accurate on
MNIST's test set as its file says (measured when $MNIST_DIR is set, as for the default model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.cnn import load_model
from server.cnn.architectures import build_preset
from server.training.mnist import Mnist
from tests.mnist_kit import mnist_accuracy

WEIGHTS = Path(__file__).resolve().parents[1] / "model_weights"
MAX_BYTES = 1_000_000  # 1 MB each
MIN_ACCURACY = {"tiny": 0.985, "lenet5": 0.985, "mlp": 0.975}


@pytest.fixture(params=sorted(MIN_ACCURACY))
def name(request: pytest.FixtureRequest) -> str:
    path = WEIGHTS / f"{request.param}.npz"
    assert path.is_file(), f"{path} is missing: train it with `convscope train --arch ...`"
    return str(request.param)


def test_file_is_small_and_is_its_preset(name: str) -> None:
    path = WEIGHTS / f"{name}.npz"
    assert path.stat().st_size <= MAX_BYTES, f"{path} is {path.stat().st_size} bytes"
    loaded = load_model(path)
    assert loaded.model.spec() == build_preset(name).spec()
    for key, value in loaded.model.state_dict().items():
        assert np.isfinite(value).all(), key
    metadata = loaded.metadata
    assert metadata["config"]["arch"] == name
    assert metadata["test_accuracy"] >= MIN_ACCURACY[name]
    matrix = np.array(metadata["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == 10000


def test_accuracy_on_mnist_test_set_is_what_the_file_says(name: str, mnist: Mnist) -> None:
    loaded = load_model(WEIGHTS / f"{name}.npz")
    accuracy = mnist_accuracy(loaded.model, mnist)
    assert accuracy >= MIN_ACCURACY[name], f"{name}: test accuracy {accuracy:.4f}"
    assert loaded.metadata["test_accuracy"] == pytest.approx(accuracy, abs=2e-4)
