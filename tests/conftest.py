"""Shared fixtures: a seeded RNG, a generator of synthetic, digit-like images, MNIST, and a
synthetic MNIST directory.

Nothing here changes global behaviour; every fixture is opt-in by name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import server.training.mnist
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


def write_idx(path: Path, array: np.ndarray) -> str:
    """A gzipped IDX file of uint8 `array`; the md5 of its uncompressed bytes."""
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    path.write_bytes(gzip.compress(data))
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def synthetic_mnist_dir(
    make_digits: Callable[..., tuple[np.ndarray, np.ndarray]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, dict[str, str]]:
    """A synthetic MNIST directory (5040 training images: 5000 go to validation; 30 test ones),
    and its md5s, which load_mnist checks against while the test runs."""
    base_x, base_y = make_digits(200, seed=20)
    pick = np.random.default_rng(0).integers(0, 200, 5040)  # repeats are fine for this test
    train_x, train_y = base_x[pick], base_y[pick]
    test_x, test_y = make_digits(30, seed=21)
    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    sums = {
        "train-images-idx3-ubyte": write_idx(data_dir / "train-images-idx3-ubyte.gz", train_x),
        "train-labels-idx1-ubyte": write_idx(data_dir / "train-labels-idx1-ubyte.gz", train_y),
        "t10k-images-idx3-ubyte": write_idx(data_dir / "t10k-images-idx3-ubyte.gz", test_x),
        "t10k-labels-idx1-ubyte": write_idx(data_dir / "t10k-labels-idx1-ubyte.gz", test_y),
    }
    monkeypatch.setattr(server.training.mnist, "FILES", sums)
    return data_dir, sums
