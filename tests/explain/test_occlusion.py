"""Occlusion saliency: the batched map equals a naive loop of single forward passes over the
documented patches, covering the ink matters more than covering the background, and on an
edited network it explains that network."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from server.cnn import Sequential, load_model, softmax
from server.cnn.architectures import mnist_cnn
from server.explain.edits import Ablation, Edits, edited_model
from server.explain.occlusion import FILL, PATCH, STRIDE, occlusion_map
from server.synth import stroke_set

SHIPPED = Path(__file__).resolve().parents[2] / "model_weights" / "mnist_cnn.npz"


@pytest.fixture(scope="module")
def trained() -> Sequential:
    if not SHIPPED.is_file():
        pytest.skip(f"{SHIPPED} is missing; train it with `make train` (CI ships it)")
    return load_model(SHIPPED).model


@pytest.fixture
def digits(make_digits: Callable[..., tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Ten synthetic digits, one per class, (10, 28, 28) float32 in [0, 1]."""
    images, _ = make_digits(10, seed=0)
    return images.astype(np.float32) / 255


def probability(model: Sequential, image: np.ndarray, target: int) -> float:
    """p(target) from one forward pass of one image."""
    return float(softmax(model.forward(image[None, :, :, None]))[0, target])


def naive_occlusion(
    model: Sequential, image: np.ndarray, target: int, starts: list[int], patch: int, fill: float
) -> np.ndarray:
    """Per pixel, the mean p(target) drop over the patches at `starts` x `starts` covering it."""
    base = probability(model, image, target)
    drops: list[list[list[float]]] = [[[] for _ in range(28)] for _ in range(28)]
    for y in starts:
        for x in starts:
            covered = image.copy()
            covered[y : y + patch, x : x + patch] = fill
            drop = base - probability(model, covered, target)
            for i in range(y, y + patch):
                for j in range(x, x + patch):
                    drops[i][j].append(drop)
    return np.array([[np.mean(cell) for cell in row] for row in drops])


def test_the_documented_defaults() -> None:
    assert (PATCH, STRIDE, FILL) == (4, 2, 0.0)


@pytest.mark.parametrize(
    ("patch", "stride", "starts"),
    [
        (PATCH, STRIDE, list(range(0, 25, 2))),  # 13 x 13 patches, the last flush with the edge
        (5, 3, [0, 3, 6, 9, 12, 15, 18, 21, 23]),  # 23 added so the last 5 rows are covered
    ],
)
def test_the_batched_map_equals_single_forward_passes(
    digits: np.ndarray, patch: int, stride: int, starts: list[int]
) -> None:
    model = load_model(SHIPPED).model if SHIPPED.is_file() else mnist_cnn(seed=0)
    image = digits[3]
    target = int(model.forward(image[None, :, :, None]).argmax())
    mapped = occlusion_map(model, image, target, patch=patch, stride=stride)
    assert mapped.shape == (28, 28)
    assert np.abs(mapped).max() > 1e-3, "the map must not be empty for the test to mean anything"
    expected = naive_occlusion(model, image, target, starts, patch, FILL)
    np.testing.assert_allclose(mapped, expected, rtol=1e-4, atol=1e-6)


def test_covering_the_ink_matters_more_than_covering_the_background(trained: Sequential) -> None:
    """On pen-stroke digits the shipped model reads (its outlier exposure reads the conftest's
    seven-segment digits as barely digits, where any patch moves little)."""
    ratios, ink_drops = [], []
    for image in stroke_set(10, seed=5, via_png=False).images:
        target = int(trained.forward(image[None, :, :, None]).argmax())
        mapped = occlusion_map(trained, image, target)
        ink, background = image > 0.5, image < 0.1
        ratios.append(np.abs(mapped[ink]).mean() / np.abs(mapped[background]).mean())
        ink_drops.append(mapped[ink].mean())
    assert min(ratios) > 3, ratios
    assert np.median(ratios) > 8, ratios
    assert np.mean(ink_drops) > 0, "hiding ink should mostly lower p(target)"


def test_hiding_a_blank_corner_changes_nothing(trained: Sequential) -> None:
    image = np.zeros((28, 28), dtype=np.float32)
    image[6:22, 12:16] = 1.0  # a bar, far from the top-left corner
    mapped = occlusion_map(trained, image, target=1)
    assert np.all(mapped[:4, :4] == 0), "the patches there replace 0 by 0: the same image"


def test_on_an_edited_network_the_map_explains_that_network(
    trained: Sequential, digits: np.ndarray
) -> None:
    image, target = digits[0], 2
    edited = edited_model(trained, Edits(ablate=[Ablation("fc1", list(range(0, 128, 2)))]))
    twin = copy.deepcopy(trained)
    twin.layer("fc1").params["weight"][:, ::2] = 0
    twin.layer("fc1").params["bias"][::2] = 0
    mine = occlusion_map(edited, image, target)
    np.testing.assert_allclose(mine, occlusion_map(twin, image, target), rtol=1e-4, atol=1e-6)
    unedited = occlusion_map(trained, image, target)
    assert np.abs(mine - unedited).max() > 1e-3, "the edit must change the map"


def test_bad_patch_geometry_is_refused() -> None:
    model = mnist_cnn(seed=0)
    with pytest.raises(ValueError, match="patch must be 1 to 28"):
        occlusion_map(model, np.zeros((28, 28)), 0, patch=29)
    with pytest.raises(ValueError, match="stride >= 1"):
        occlusion_map(model, np.zeros((28, 28)), 0, stride=0)
