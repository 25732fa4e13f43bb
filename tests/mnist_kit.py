"""MNIST helpers for tests (the `mnist` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

import numpy as np

from server.cnn import Sequential
from server.training.mnist import Mnist


def mnist_accuracy(model: Sequential, data: Mnist) -> float:
    """Share of MNIST's 10,000 test digits the model reads right: a plain loop of forward passes,
    apart from the training code's own evaluation."""
    correct = 0
    for start in range(0, len(data.test_images), 500):
        x = (data.test_images[start : start + 500].astype(np.float32) / 255.0)[..., None]
        predictions = model.forward(x).argmax(axis=1)  # (500,)
        correct += int((predictions == data.test_labels[start : start + 500]).sum())
    return correct / len(data.test_images)
