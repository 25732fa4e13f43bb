"""The network ConvScope ships: two conv -> ReLU -> max-pool blocks and a small classifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from server.cnn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from server.cnn.model import Sequential


def mnist_cnn(
    seed: int = 0, conv1: int = 32, conv2: int = 64, hidden: int = 128, dropout: float = 0.5
) -> Sequential:
    """28x28x1 -> 28x28x32 -> 14x14x32 -> 14x14x64 -> 7x7x64 -> hidden -> 10 logits."""
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D("conv1", 1, conv1, 3, padding="same", rng=rng),
            ReLU("relu1"),
            MaxPool2D("pool1", 2),
            Conv2D("conv2", conv1, conv2, 3, padding="same", rng=rng),
            ReLU("relu2"),
            MaxPool2D("pool2", 2),
            Flatten("flatten"),
            Dense("fc1", 7 * 7 * conv2, hidden, rng=rng),
            ReLU("relu3"),
            Dropout("dropout", dropout),
            Dense("fc2", hidden, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


Builder = Callable[..., Sequential]

PRESETS: dict[str, Builder] = {"default": mnist_cnn}
"""Architectures `convscope train --arch NAME` (and training jobs) build by name."""


def build_preset(name: str, seed: int = 0, dropout: float | None = None) -> Sequential:
    """A fresh, randomly initialised network of a named preset; KeyError lists the known ones."""
    if name not in PRESETS:
        raise KeyError(f"unknown architecture {name!r}; presets are {sorted(PRESETS)}")
    kwargs: dict[str, Any] = {"seed": seed}
    if dropout is not None:
        kwargs["dropout"] = dropout
    return PRESETS[name](**kwargs)
