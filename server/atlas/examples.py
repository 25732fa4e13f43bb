"""One pass over the test set: the model's reading of every digit, the embedded layer's vectors,
and for each channel the digits that excite it most and where."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.atlas.geometry import ConvGroup
from server.atlas.store import EXAMPLES
from server.cnn import Sequential, softmax
from server.training.evaluation import to_input

BATCH = 500


@dataclass(frozen=True)
class Peaks:
    """Each digit's highest value in each channel of a map, and where."""

    values: np.ndarray  # (N, C) float32
    positions: np.ndarray  # (N, C) int: row * width + col


@dataclass(frozen=True)
class TestPass:
    probabilities: np.ndarray  # (N, 10)
    features: np.ndarray  # (N, D): the embedded layer, flattened
    peaks: dict[str, Peaks]  # by map layer name


def read_test_set(
    model: Sequential, images: np.ndarray, groups: list[ConvGroup], embedded: str
) -> TestPass:
    """Forward every image once, in batches, keeping only what the atlas needs."""
    maps = [group.map for group in groups]
    probabilities, features = [], []
    values: dict[str, list[np.ndarray]] = {name: [] for name in maps}
    positions: dict[str, list[np.ndarray]] = {name: [] for name in maps}
    for start in range(0, len(images), BATCH):
        logits, kept = model.forward_keeping(
            to_input(images[start : start + BATCH]), {*maps, embedded}
        )
        probabilities.append(softmax(logits))
        features.append(kept[embedded].reshape(len(logits), -1))  # (B, D)
        for name in maps:
            batch, height, width, channels = kept[name].shape
            flat = kept[name].reshape(batch, height * width, channels)  # (B, H*W, C)
            positions[name].append(flat.argmax(axis=1))  # (B, C)
            values[name].append(flat.max(axis=1))
    return TestPass(
        np.concatenate(probabilities),
        np.concatenate(features),
        {
            name: Peaks(np.concatenate(values[name]), np.concatenate(positions[name]))
            for name in maps
        },
    )


def top_examples(
    peaks: Peaks, width: int, count: int = EXAMPLES
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each channel, the `count` digits with the highest peak, best first: their indices,
    rows, columns and values, each (C, count)."""
    order = np.argsort(-peaks.values, axis=0, kind="stable")[:count].T  # (C, count)
    channel = np.arange(order.shape[0])[:, None]
    where = peaks.positions[order, channel]  # (C, count)
    return order, where // width, where % width, peaks.values[order, channel]
