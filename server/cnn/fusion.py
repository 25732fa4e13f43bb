"""Which layers a forward pass runs together, and how: the outputs and gradients of running them
one by one, with fewer passes over memory (docs/speed.md, "Fused layers").

- A conv, an optional activation and a pool whose windows tile the conv's output run as one
  block: the conv writes its output pool-window offset first (`Conv2D.forward_pooled`), so the
  activation and the pool work on contiguous blocks instead of strided tiles. A ReLU before a
  max-pool runs after it, on a quarter of the values: max-pool and ReLU commute, and the gradient
  is the same (a window whose max is <= 0 gets none either way).
- An activation after a layer that returns a fresh array (conv, dense, batch norm) runs in place.

Each layer still gets its own cache, and `backward` runs layer by layer as ever. Nothing is fused
where a caller keeps an inner output (`forward_keeping`'s names) or wants every output (`trace`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from server.cnn.layers import AvgPool2D, BatchNorm, Conv2D, Dense, Layer, MaxPool2D
from server.cnn.layers.activation import FOLDED, Activation, ReLU

Array = np.ndarray
FRESH_OUTPUT: tuple[type[Layer], ...] = (Conv2D, Dense, BatchNorm)  # output shared with nobody


class Step:
    """One or more consecutive layers, run as one: the output and each layer's cache."""

    def __init__(self, *layers: Layer) -> None:
        self.layers = layers

    def forward(
        self, x: Array, training: bool, rng: np.random.Generator | None
    ) -> tuple[Array, list[Any]]:
        layer = self.layers[0]
        out, cache = layer.forward(x, training=training, rng=rng)
        return out, [cache]

    @property
    def name(self) -> str:
        return "+".join(layer.name for layer in self.layers)


class InPlace(Step):
    """An activation written over its input, which the layer before it made for it alone."""

    def __init__(self, activation: Activation) -> None:
        super().__init__(activation)
        self.activation = activation

    def forward(
        self, x: Array, training: bool, rng: np.random.Generator | None
    ) -> tuple[Array, list[Any]]:
        out, cache = self.activation.forward_in_place(x)
        return out, [cache]


class PooledConv(Step):
    """Conv2D, an optional activation, then a max- or average-pool whose windows tile the
    conv's output: everything between the conv and the pool in pool-window order."""

    def __init__(
        self, conv: Conv2D, activation: Activation | None, pool: MaxPool2D | AvgPool2D
    ) -> None:
        super().__init__(*(layer for layer in (conv, activation, pool) if layer is not None))
        self.conv, self.activation, self.pool = conv, activation, pool
        self.relu_after_pool = isinstance(pool, MaxPool2D) and type(activation) is ReLU

    def forward(
        self, x: Array, training: bool, rng: np.random.Generator | None
    ) -> tuple[Array, list[Any]]:
        p = self.pool.pool_size
        values, conv_cache = self.conv.forward_pooled(x, p)  # (p*p, N*oh*ow, F)
        caches: list[Any] = [conv_cache]
        if self.activation is not None and not self.relu_after_pool:
            values, activation_cache = self.activation.forward_in_place(values)
            caches.append(activation_cache)
        n, out_h, out_w = conv_cache.out_shape
        out_shape = (n, out_h // p, out_w // p, self.conv.out_channels)
        if isinstance(self.pool, MaxPool2D):
            out, pool_cache = self.pool.forward_rows(values, out_shape, self.relu_after_pool)
            if self.relu_after_pool:
                caches.append(FOLDED)
        else:
            out, pool_cache = self.pool.forward_rows(values, out_shape)
        return out, [*caches, pool_cache]


def plan(
    layers: Sequence[Layer], shapes: Sequence[tuple[int, ...]], keep: Collection[str]
) -> list[Step]:
    """The steps that run `layers` (whose outputs have `shapes`, per sample), keeping the
    output of every layer named in `keep` as the layer alone would give it."""
    steps: list[Step] = []
    index = 0
    while index < len(layers):
        layer = layers[index]
        step: Step | None = pooled_conv(layers, shapes, index, keep)
        if step is None and isinstance(layer, Activation) and steps and fresh(steps[-1], keep):
            step = InPlace(layer)
        if step is None:
            step = Step(layer)
        steps.append(step)
        index += len(step.layers)
    return steps


def fresh(step: Step, keep: Collection[str]) -> bool:
    """Whether the step's output is a new array that nobody else holds."""
    layer = step.layers[-1]
    return type(step) is Step and type(layer) in FRESH_OUTPUT and layer.name not in keep


def pooled_conv(
    layers: Sequence[Layer], shapes: Sequence[tuple[int, ...]], index: int, keep: Collection[str]
) -> PooledConv | None:
    """The conv block starting at `index`, if the layers there make one."""
    conv = layers[index]
    if type(conv) is not Conv2D or conv.name in keep:
        return None
    after = index + 1
    activation = None
    if after < len(layers) and type(layers[after]) in Activation.__subclasses__():
        activation = layers[after]
        if activation.name in keep:
            return None
        after += 1
    if after >= len(layers):
        return None
    pool = layers[after]
    if type(pool) not in (MaxPool2D, AvgPool2D):
        return None
    assert isinstance(pool, MaxPool2D | AvgPool2D)
    assert isinstance(activation, Activation | None)
    out_h, out_w, _ = shapes[index]
    if not pool.tiled or out_h % pool.pool_size or out_w % pool.pool_size:
        return None
    return PooledConv(conv, activation, pool)
