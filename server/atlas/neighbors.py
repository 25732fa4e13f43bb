"""A drawing among the atlas's digits: its nearest ones in the embedded layer (brute force over a
few thousand vectors, a fraction of a millisecond) and its place on the 2-D map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.atlas.examples import BATCH
from server.atlas.store import Atlas
from server.cnn import Sequential
from server.training.evaluation import to_input

COUNT = 8


@dataclass(frozen=True)
class Neighbors:
    """Positions among the atlas's held digits, nearest first, and where the drawing lands."""

    positions: np.ndarray  # (k,) int
    distances: np.ndarray  # (k,) float32, Euclidean
    x: float
    y: float


class NeighborIndex:
    """The held digits' vectors in the embedded layer; read-only, so threads share it."""

    def __init__(self, features: np.ndarray, xy: np.ndarray) -> None:
        self.features = np.ascontiguousarray(features, dtype=np.float32)  # (M, D)
        self.squared_norms = (self.features**2).sum(axis=1)  # (M,)
        self.xy = xy  # (M, 2)

    @classmethod
    def of(cls, model: Sequential, atlas: Atlas) -> NeighborIndex:
        """Vectors computed from the atlas's pixels by the model itself (the file keeps only the
        pixels: a 1,176-wide layer's vectors would not fit the size budget)."""
        vectors = []
        for start in range(0, len(atlas.pixels), BATCH):
            batch = to_input(atlas.pixels[start : start + BATCH])
            _, kept = model.forward_keeping(batch, {atlas.layer})
            vectors.append(kept[atlas.layer].reshape(len(batch), -1))  # (B, D)
        return cls(np.concatenate(vectors), atlas.xy)

    def nearest(self, vector: np.ndarray, count: int = COUNT) -> Neighbors:
        """The `count` held digits nearest to `vector` (D,), and its place on the map: their
        places weighted by 1 / distance."""
        vector = vector.reshape(-1)
        squared = self.squared_norms - 2.0 * (self.features @ vector)  # (M,) minus |vector|^2
        count = min(count, len(squared))
        nearest = np.argpartition(squared, count - 1)[:count]
        nearest = nearest[np.argsort(squared[nearest], kind="stable")]
        own = float(vector @ vector)
        distances = np.sqrt(np.maximum(squared[nearest] + own, 0.0)).astype(np.float32)
        weights = 1.0 / (distances + 1e-6)
        x, y = weights @ self.xy[nearest] / weights.sum()
        return Neighbors(nearest, distances, float(x), float(y))
