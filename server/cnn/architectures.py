"""The networks ConvScope trains by name: today's CNN and three smaller ones to compare with it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from server.cnn.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Tanh,
)
from server.cnn.model import Sequential


def two_blocks(rng: np.random.Generator, conv1: int = 32, conv2: int = 64) -> list[Layer]:
    """Two conv, ReLU, 2x2 max-pool blocks: 28x28x1 -> 28x28xconv1 -> 14x14xconv1 ->
    14x14xconv2 -> 7x7xconv2."""
    return [
        Conv2D("conv1", 1, conv1, 3, padding="same", rng=rng),
        ReLU("relu1"),
        MaxPool2D("pool1", 2),
        Conv2D("conv2", conv1, conv2, 3, padding="same", rng=rng),
        ReLU("relu2"),
        MaxPool2D("pool2", 2),
    ]


def dense_head(
    rng: np.random.Generator, features: int, hidden: int, dropout: float, relu: str
) -> list[Layer]:
    """Flatten, a hidden dense layer with its ReLU (named `relu`, as weights files store it),
    dropout, then the 10 logits."""
    return [
        Flatten("flatten"),
        Dense("fc1", features, hidden, rng=rng),
        ReLU(relu),
        Dropout("dropout", dropout),
        Dense("fc2", hidden, 10, rng=rng),
    ]


def mnist_cnn(
    seed: int = 0, conv1: int = 32, conv2: int = 64, hidden: int = 128, dropout: float = 0.5
) -> Sequential:
    """28x28x1 -> 28x28x32 -> 14x14x32 -> 14x14x64 -> 7x7x64 -> hidden -> 10 logits."""
    rng = np.random.default_rng(seed)
    blocks = two_blocks(rng, conv1, conv2)
    return Sequential(
        [*blocks, *dense_head(rng, 7 * 7 * conv2, hidden, dropout, "relu3")],
        input_shape=(28, 28, 1),
    )


def three_conv(seed: int = 0, dropout: float = 0.5, hidden: int = 128) -> Sequential:
    """The default's two blocks and a third, unpadded convolution on their 7x7 maps: one more
    layer of features, and a dense layer a half the size (1,600 inputs instead of 3,136).

    28x28x1 -> 28x28x32 -> 14x14x32 -> 14x14x64 -> 7x7x64 -> 5x5x64 -> hidden -> 10 logits.
    """
    rng = np.random.default_rng(seed)
    blocks = [
        *two_blocks(rng),
        Conv2D("conv3", 64, 64, 3, padding="valid", rng=rng),
        ReLU("relu3"),
    ]
    return Sequential(
        [*blocks, *dense_head(rng, 5 * 5 * 64, hidden, dropout, "relu4")],
        input_shape=(28, 28, 1),
    )


def tiny(seed: int = 0) -> Sequential:
    """16.5k parameters and no pooling: stride-2 convolutions halve the maps, batch norm
    keeps the three narrow layers trainable.

    28x28x1 -> 28x28x8 -> 14x14x16 -> 7x7x24 -> 1176 -> 10 logits.
    """
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D("conv1", 1, 8, 3, padding="same", bias=False, rng=rng),
            BatchNorm("bn1", 8),
            ReLU("relu1"),
            Conv2D("conv2", 8, 16, 3, stride=2, padding="same", bias=False, rng=rng),
            BatchNorm("bn2", 16),
            ReLU("relu2"),
            Conv2D("conv3", 16, 24, 3, stride=2, padding="same", bias=False, rng=rng),
            BatchNorm("bn3", 24),
            ReLU("relu3"),
            Flatten("flatten"),
            Dense("fc", 7 * 7 * 24, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


def lenet5(seed: int = 0) -> Sequential:
    """LeCun et al. 1998: 5x5 convolutions with 6 and 16 filters, average pooling, tanh, then
    dense 120, 84, 10. LeNet read 32x32 images; padding 2 gives the same 28x28 first maps.

    28x28x1 -> 28x28x6 -> 14x14x6 -> 10x10x16 -> 5x5x16 -> 400 -> 120 -> 84 -> 10 logits.
    """
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D("conv1", 1, 6, 5, padding=2, rng=rng),
            Tanh("tanh1"),
            AvgPool2D("pool1", 2),
            Conv2D("conv2", 6, 16, 5, padding="valid", rng=rng),
            Tanh("tanh2"),
            AvgPool2D("pool2", 2),
            Flatten("flatten"),
            Dense("fc1", 5 * 5 * 16, 120, rng=rng),
            Tanh("tanh3"),
            Dense("fc2", 120, 84, rng=rng),
            Tanh("tanh4"),
            Dense("fc3", 84, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


def mlp(seed: int = 0, hidden: int = 128) -> Sequential:
    """No convolution at all, for contrast: every pixel weighted separately by every unit.

    28x28x1 -> 784 -> hidden -> 10 logits.
    """
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Flatten("flatten"),
            Dense("fc1", 28 * 28, hidden, rng=rng),
            ReLU("relu1"),
            Dense("fc2", hidden, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


Builder = Callable[..., Sequential]

PRESETS: dict[str, Builder] = {
    "default": mnist_cnn,
    "three-conv": three_conv,
    "tiny": tiny,
    "lenet5": lenet5,
    "mlp": mlp,
}
"""Architectures `convscope train --arch NAME` (and training jobs) build by name."""


def build_preset(name: str, seed: int = 0, dropout: float | None = None) -> Sequential:
    """A fresh, randomly initialised network of a named preset; KeyError lists the known ones.

    `dropout` goes to presets that have a dropout layer and is ignored by the rest.
    """
    if name not in PRESETS:
        raise KeyError(f"unknown architecture {name!r}; presets are {sorted(PRESETS)}")
    builder = PRESETS[name]
    kwargs: dict[str, Any] = {"seed": seed}
    if dropout is not None and "dropout" in inspect.signature(builder).parameters:
        kwargs["dropout"] = dropout
    return builder(**kwargs)
