"""Evaluation helpers shared by training, `convscope evaluate` and the tests."""

from __future__ import annotations

import numpy as np

from server.cnn import Sequential, softmax_cross_entropy
from server.cnn.lanes import Lanes


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) in 0..255 or float in [0, 1] -> float32 (N, 28, 28, 1) in [0, 1]."""
    x = images.astype(np.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    return x[..., None]  # (N, 28, 28, 1)


def predict_logits(
    model: Sequential | Lanes, images: np.ndarray, batch_size: int = 1000
) -> np.ndarray:
    """Logits for a whole split, in batches so memory stays bounded, each run in the lanes'
    slices (a model alone in slices on this thread: 148-155 ms per 1,000 default images,
    against 273 in one piece; scripts/lanes_speed.py)."""
    lanes = model if isinstance(model, Lanes) else Lanes(model, 1)
    return np.concatenate(
        [
            lanes.forward(to_input(images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )


def evaluate(
    model: Sequential | Lanes, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000
) -> tuple[float, float]:
    """(mean loss, accuracy) on a labelled set, `batch_size` images per forward pass."""
    logits = predict_logits(model, images, batch_size=batch_size)
    loss, _ = softmax_cross_entropy(logits, labels.astype(np.int64))
    return loss, float((logits.argmax(axis=1) == labels).mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    """(classes, classes) counts: rows are true labels, columns predictions."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return matrix
