"""Interventions for one request: zero some output channels, or swap a conv filter.

`edited_model` returns a new Sequential that shares every untouched layer with the served
model (read-only), wraps each ablated layer so its chosen channels come out 0, and holds a
private copy of each conv layer whose filters change. The served model is never written to,
so requests with and without edits can run at the same time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn import Conv2D, Layer, Sequential
from server.cnn.layers.base import Array, Params

MAX_ABLATED_PER_LAYER = 256
# Bound on every number of a kernel edit. Trained weights are below 1; with |w| <= 1000 every
# activation of the shipped network stays far inside float32, so no edit can make a NaN.
MAX_WEIGHT = 1000.0


class EditError(ValueError):
    """An edit this model cannot take; the message names the edit and says why."""


@dataclass(frozen=True)
class Ablation:
    """Set `channels` of `layer`'s output to 0: channels of a map, units of a vector."""

    layer: str
    channels: Sequence[int]


@dataclass(frozen=True)
class KernelEdit:
    """Replace filter `channel` of conv `layer` by `weight`, [C_in, kh, kw]; `bias` if given."""

    layer: str
    channel: int
    weight: Any  # nested sequences or an array, [C_in, kh, kw]
    bias: float | None = None


@dataclass(frozen=True)
class Edits:
    """Everything one request changes; duplicate ablated channels count once."""

    ablate: Sequence[Ablation] = ()
    kernels: Sequence[KernelEdit] = ()


class Ablated(Layer):
    """`inner` with some output channels (the last axis) forced to 0, forward and backward."""

    def __init__(self, inner: Layer, channels: Sequence[int]) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.kind = inner.kind
        self.params = inner.params  # the inner layer's own arrays, read only
        self.channels = np.array(sorted(channels), dtype=np.intp)

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        out, cache = self.inner.forward(x, training=training, rng=rng)
        out = out.copy()  # dropout and flatten hand back (a view of) their input: never write it
        out[..., self.channels] = 0
        return out, cache

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        grad = grad_out.copy()
        grad[..., self.channels] = 0  # a channel held at 0 does not depend on what fed it
        return self.inner.backward(grad, cache)

    def mask(self, cache: Any) -> Array | None:
        return self.inner.mask(cache)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.inner.output_shape(input_shape)

    def config(self) -> dict[str, Any]:
        return self.inner.config()


def edited_model(model: Sequential, edits: Edits) -> Sequential:
    """The network `edits` describe, built for one request; EditError if an edit does not fit."""
    ablated = ablated_channels(model, edits.ablate)
    filters = new_filters(model, edits.kernels)
    layers: list[Layer] = []
    for layer in model.layers:
        if isinstance(layer, Conv2D) and layer.name in filters:
            layer = with_filters(layer, filters[layer.name])
        if ablated.get(layer.name):
            layer = Ablated(layer, sorted(ablated[layer.name]))
        layers.append(layer)
    height, width, channels = model.input_shape
    return Sequential(layers, (height, width, channels))


def ablated_channels(model: Sequential, ablations: Sequence[Ablation]) -> dict[str, set[int]]:
    """Layer name -> the channels to zero, each checked against the layer's width."""
    shapes = {
        layer.name: shape for layer, shape in zip(model.layers, model.output_shapes, strict=True)
    }
    chosen: dict[str, set[int]] = {}
    for index, ablation in enumerate(ablations):
        where = f"edits.ablate[{index}]"
        shape = shapes.get(ablation.layer)
        if shape is None:
            raise EditError(
                f"{where}.layer: no layer {ablation.layer!r}; layers are {', '.join(shapes)}"
            )
        width, unit = shape[-1], "unit" if len(shape) == 1 else "channel"
        for channel in ablation.channels:
            if not 0 <= channel < width:
                raise EditError(
                    f"{where}.channels: {unit} {channel} is out of range; {ablation.layer} has "
                    f"{width} {unit}s, numbered 0 to {width - 1}"
                )
        chosen.setdefault(ablation.layer, set()).update(ablation.channels)
    for name, channels in chosen.items():
        if len(channels) > MAX_ABLATED_PER_LAYER:
            raise EditError(
                f"edits.ablate: {len(channels)} channels of {name} ablated; at most "
                f"{MAX_ABLATED_PER_LAYER} per layer"
            )
    return chosen


def new_filters(
    model: Sequential, kernels: Sequence[KernelEdit]
) -> dict[str, dict[int, tuple[Array, float | None]]]:
    """Conv layer name -> {filter: (weight (kh, kw, C_in) float32, bias or None)}, checked."""
    convs = {layer.name: layer for layer in model.layers if isinstance(layer, Conv2D)}
    filters: dict[str, dict[int, tuple[Array, float | None]]] = {}
    for index, edit in enumerate(kernels):
        where = f"edits.kernels[{index}]"
        conv = convs.get(edit.layer)
        if conv is None:
            names = ", ".join(convs)
            if edit.layer in {layer.name for layer in model.layers}:
                kind = model.layer(edit.layer).kind
                raise EditError(
                    f"{where}.layer: {edit.layer} is a {kind} layer; kernel edits apply to conv "
                    f"layers only ({names})"
                )
            raise EditError(f"{where}.layer: no conv layer {edit.layer!r}; conv layers are {names}")
        count = conv.out_channels
        if not 0 <= edit.channel < count:
            raise EditError(
                f"{where}.channel: filter {edit.channel} is out of range; {conv.name} has {count} "
                f"filters, numbered 0 to {count - 1}"
            )
        if edit.channel in filters.get(conv.name, {}):
            raise EditError(
                f"{where}: filter {edit.channel} of {conv.name} is edited twice; send one kernel "
                "per filter"
            )
        weight = checked_numbers(edit.weight, f"{where}.weight")
        expected = (conv.in_channels, conv.kernel_size, conv.kernel_size)
        if weight.shape != expected:
            raise EditError(
                f"{where}.weight has shape {list(weight.shape)}; filters of {conv.name} are "
                f"[C_in, kh, kw] = {list(expected)}"
            )
        bias = None
        if edit.bias is not None:
            if not conv.bias:
                raise EditError(f"{where}.bias: {conv.name} has no bias to replace")
            bias = float(checked_numbers(edit.bias, f"{where}.bias"))
        kernel = weight.transpose(1, 2, 0).astype(np.float32)  # [C_in, kh, kw] -> (kh, kw, C_in)
        filters.setdefault(conv.name, {})[edit.channel] = (kernel, bias)
    return filters


def checked_numbers(value: Any, where: str) -> Array:
    """A float64 array of finite numbers within +-MAX_WEIGHT, or an EditError naming the first
    bad one by its index."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise EditError(f"{where} must be a rectangular array of numbers") from None
    bad = np.argwhere(~(np.abs(array) <= MAX_WEIGHT))  # NaN fails the comparison too
    if len(bad):
        position = tuple(int(i) for i in bad[0])
        number = float(array[position])
        what = "not a finite number" if not np.isfinite(number) else "too large"
        raise EditError(
            f"{where}{''.join(f'[{i}]' for i in position)} is {number}, {what}; kernel edits take "
            f"finite numbers within +-{MAX_WEIGHT:g}"
        )
    return array


def with_filters(layer: Conv2D, filters: dict[int, tuple[Array, float | None]]) -> Conv2D:
    """A copy of `layer` for this request only, with some filters (and biases) replaced."""
    edited = copy.copy(layer)
    edited.params = {key: value.copy() for key, value in layer.params.items()}
    for channel, (kernel, bias) in filters.items():
        edited.params["weight"][:, :, :, channel] = kernel  # (kh, kw, C_in, F)
        if bias is not None:
            edited.params["bias"][channel] = bias
    return edited
