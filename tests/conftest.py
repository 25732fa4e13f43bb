"""Shared fixtures: a seeded RNG, a generator of synthetic, digit-like images, and MNIST.

Nothing here changes global behaviour; every fixture is opt-in by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from server.training.mnist import Mnist, MnistError, load_mnist

# Seven-segment digits: a top, b top-right, c bottom-right, d bottom, e bottom-left,
# f top-left, g middle. Different enough per class that a small CNN can tell them apart.
SEGMENTS = {
    0: "abcdef",
    1: "bc",
    2: "abged",
    3: "abgcd",
    4: "fgbc",
    5: "afgcd",
    6: "afgedc",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}


def _draw_digit(label: int, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 float image in [0, 1]: a jittered, seven-segment `label` in a thick stroke."""
    image = np.zeros((28, 28), dtype=np.float64)
    height, width = int(rng.integers(16, 21)), int(rng.integers(9, 14))
    top = int(rng.integers(3, 28 - height - 2))
    left = int(rng.integers(4, 28 - width - 3))
    t = int(rng.integers(2, 4))  # stroke thickness
    mid = top + height // 2
    bottom, right = top + height, left + width
    boxes = {
        "a": (top, top + t, left, right),
        "b": (top, mid + 1, right - t, right),
        "c": (mid, bottom, right - t, right),
        "d": (bottom - t, bottom, left, right),
        "e": (mid, bottom, left, left + t),
        "f": (top, mid + 1, left, left + t),
        "g": (mid - t // 2, mid - t // 2 + t, left, right),
    }
    for segment in SEGMENTS[label]:
        y0, y1, x0, x1 = boxes[segment]
        image[y0:y1, x0:x1] = rng.uniform(0.75, 1.0)
    # soften the edges a little, like an anti-aliased pen, and add faint noise
    soft = image.copy()
    soft[1:] += 0.25 * image[:-1]
    soft[:-1] += 0.25 * image[1:]
    soft[:, 1:] += 0.25 * image[:, :-1]
    soft[:, :-1] += 0.25 * image[:, 1:]
    soft += rng.uniform(0.0, 0.05, soft.shape)
    return np.clip(soft, 0.0, 1.0)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator for each test."""
    return np.random.default_rng(12345)


@pytest.fixture
def make_digits() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """make_digits(n, seed=0) -> (uint8 images (n, 28, 28), uint8 labels (n,)), balanced classes."""

    def make(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        gen = np.random.default_rng(seed)
        labels = (np.arange(n) % 10).astype(np.uint8)
        gen.shuffle(labels)
        images = (
            np.stack([_draw_digit(int(k), gen) for k in labels]) if n else np.zeros((0, 28, 28))
        )
        return np.round(images * 255).astype(np.uint8), labels

    return make


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """MNIST from $MNIST_DIR, read once: skips when it is unset, fails when it is set but the
    files are not usable (CI always sets it)."""
    directory = os.environ.get("MNIST_DIR")
    if not directory:
        pytest.skip("MNIST_DIR is not set; point it at the MNIST IDX files (CI: ../shared/mnist)")
    try:
        return load_mnist(directory)
    except MnistError as error:
        pytest.fail(f"MNIST_DIR={directory} is set but MNIST cannot be loaded: {error}")
