"""NeighborIndex against brute force: each held digit forwarded alone, float64 Euclidean
distances, a sort; and the drawing's place as the inverse-distance-weighted mean of its
neighbours' places. On a part of the shipped atlases, so that forwarding each digit alone stays
quick."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from server.atlas.neighbors import COUNT, NeighborIndex, Neighbors
from server.atlas.store import Atlas
from server.cnn import Sequential
from server.inference import Predictor

WEIGHTS = Path(__file__).resolve().parents[2] / "model_weights"
# digits of each index: tiny's more than the batch of 500 the index reads them in
HELD = {"mnist_cnn": 260, "tiny": 520}
REAL = 20  # other held digits asked about: real vectors the index does not hold
RANDOM = 10


def vector_of(model: Sequential, pixels: np.ndarray, layer: str) -> np.ndarray:
    """One uint8 digit (28, 28) alone through the model: `layer`'s output, flattened, float64."""
    x = (pixels.astype(np.float32) / 255.0)[None, :, :, None]  # (1, 28, 28, 1)
    _, kept = model.forward_keeping(x, {layer})
    return kept[layer].reshape(-1).astype(np.float64)


@dataclass(frozen=True)
class Part:
    """A part of a shipped atlas, its index, its vectors by brute force, and queries."""

    name: str
    atlas: Atlas
    index: NeighborIndex
    vectors: np.ndarray  # (M, D) float64
    queries: dict[str, np.ndarray]  # (Q, D) float64 by kind


def part_of(atlas: Atlas, keep: np.ndarray) -> Atlas:
    return dataclasses.replace(
        atlas,
        index=atlas.index[keep],
        pixels=atlas.pixels[keep],
        labels=atlas.labels[keep],
        probabilities=atlas.probabilities[keep],
        xy=atlas.xy[keep],
    )


@pytest.fixture(scope="module", params=["mnist_cnn", "tiny"])
def part(request: pytest.FixtureRequest) -> Part:
    predictor = Predictor.from_file(WEIGHTS / f"{request.param}.npz")
    atlas = predictor.atlas
    assert atlas is not None
    rng = np.random.default_rng(7)
    chosen = rng.permutation(len(atlas.index))
    count = HELD[request.param]
    keep, others = np.sort(chosen[:count]), chosen[count : count + REAL]
    held = part_of(atlas, keep)
    model = predictor.model
    vectors = np.stack([vector_of(model, pixels, atlas.layer) for pixels in held.pixels])
    real = np.stack([vector_of(model, atlas.pixels[i], atlas.layer) for i in others])
    spread = vectors.std(axis=0)
    random = vectors.mean(axis=0) + spread * rng.normal(size=(RANDOM, vectors.shape[1]))
    return Part(
        request.param,
        held,
        NeighborIndex.of(model, held),
        vectors,
        {"real": real, "random": random, "held": vectors[[0, count // 2, count - 1]]},
    )


def test_the_index_holds_each_digits_own_vector(part: Part) -> None:
    assert part.index.features.shape == part.vectors.shape
    np.testing.assert_allclose(part.index.features, part.vectors, rtol=1e-5, atol=1e-5)


def assert_nearest(found: Neighbors, vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`found` against a sort of every distance, ties allowed; returns the true distances."""
    distances = np.sqrt(((vectors - query) ** 2).sum(axis=1))  # (M,) float64
    ranked = np.sort(distances)
    count = min(COUNT, len(vectors))
    assert len(found.positions) == len(found.distances) == count
    assert len(set(found.positions.tolist())) == count, "a digit twice"
    slack = 1e-3 * (1.0 + np.sqrt(np.abs(query @ query)))  # float32 and |a|^2 - 2ab + |b|^2
    true = distances[found.positions]
    np.testing.assert_allclose(true, ranked[:count], atol=slack, err_msg="not the nearest")
    np.testing.assert_allclose(found.distances, true, atol=slack, err_msg="distances")
    assert (np.diff(found.distances) >= 0).all(), "not nearest first"
    assert -1.0 <= found.x <= 1.0
    assert -1.0 <= found.y <= 1.0
    return true


@pytest.mark.parametrize("kind", ["real", "random"])
def test_nearest_matches_brute_force(part: Part, kind: str) -> None:
    for query in part.queries[kind]:
        found = part.index.nearest(query.astype(np.float32))
        true = assert_nearest(found, part.vectors, query)
        weights = 1.0 / true  # the place: their places weighted by 1 / distance
        x, y = (weights[:, None] * part.atlas.xy[found.positions]).sum(axis=0) / weights.sum()
        assert (found.x, found.y) == pytest.approx((x, y), abs=1e-4)


def test_a_held_digit_finds_itself_first_and_lands_on_its_own_place(part: Part) -> None:
    for query in part.queries["held"]:
        found = part.index.nearest(query.astype(np.float32))
        assert_nearest(found, part.vectors, query)
        itself = int(np.flatnonzero((part.vectors == query).all(axis=1))[0])
        assert found.positions[0] == itself
        assert (found.x, found.y) == pytest.approx(tuple(part.atlas.xy[itself]), abs=0.02)


def test_fewer_digits_than_neighbours_gives_them_all(rng: np.random.Generator) -> None:
    vectors = rng.normal(size=(5, 3))
    xy = rng.uniform(-1, 1, (5, 2)).astype(np.float32)
    index = NeighborIndex(vectors, xy)
    for query in rng.normal(size=(4, 3)):
        found = index.nearest(query)
        true = assert_nearest(found, vectors, query)
        weights = 1.0 / true
        place = (weights[:, None] * xy[found.positions]).sum(axis=0) / weights.sum()
        assert (found.x, found.y) == pytest.approx(tuple(place), abs=1e-5)
