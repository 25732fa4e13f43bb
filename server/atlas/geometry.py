"""Which layers share a convolution's channels, and which input pixels each of their units sees."""

from __future__ import annotations

from dataclasses import dataclass

from server.cnn import Conv2D, Sequential
from server.cnn.im2col import resolve_padding
from server.cnn.layers import BatchNorm
from server.cnn.layers.windows import Pool2D

SIDE = 28


@dataclass(frozen=True)
class Field:
    """The receptive field of a map's units: unit (row, col) sees input rows
    start + row * jump ... + size - 1 (the same for columns), before clipping to the image."""

    size: int
    jump: int
    start: int

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """[top, left, bottom, right) in the 28x28 input, clipped to it."""
        top, left = self.start + row * self.jump, self.start + col * self.jump
        return (
            max(top, 0),
            max(left, 0),
            min(top + self.size, SIDE),
            min(left + self.size, SIDE),
        )


@dataclass(frozen=True)
class ConvGroup:
    """A convolution and the layers after it that keep its channels (batch norm, activation,
    pooling): one filter's maps, ranked by `map`'s values (the conv's, or its batch norm's:
    before the nonlinearity)."""

    conv: str
    map: str
    map_index: int  # position of `map` in model.layers
    members: tuple[str, ...]
    channels: int
    height: int
    width: int
    field: Field

    @property
    def centre(self) -> tuple[int, int]:
        return self.height // 2, self.width // 2


def fields(model: Sequential) -> list[Field | None]:
    """Each layer's receptive field in the input; None from the first vector output on."""
    size, jump, start = 1, 1, 0  # the input pixel itself
    height = model.input_shape[0]
    found: list[Field | None] = []
    for layer, shape in zip(model.layers, model.output_shapes, strict=True):
        if len(shape) != 3:
            found += [None] * (len(model.layers) - len(found))
            break
        if isinstance(layer, Conv2D | Pool2D):
            kernel = layer.kernel_size if isinstance(layer, Conv2D) else layer.pool_size
            padding = layer.padding if isinstance(layer, Conv2D) else "valid"
            before, _, _ = resolve_padding(padding, height, kernel, layer.stride)
            size, start, jump = (
                size + (kernel - 1) * jump,
                start - before * jump,
                jump * layer.stride,
            )
        height = shape[0]
        found.append(Field(size, jump, start))
    return found


def conv_groups(model: Sequential) -> list[ConvGroup]:
    """Every convolution's group, in model order; empty for a network without convolutions."""
    layers, shapes, receptive = model.layers, model.output_shapes, fields(model)
    groups = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, Conv2D):
            continue
        end = index + 1
        while end < len(layers) and len(shapes[end]) == 3 and not isinstance(layers[end], Conv2D):
            end += 1
        map_index = (
            index + 1 if end > index + 1 and isinstance(layers[index + 1], BatchNorm) else index
        )
        field = receptive[map_index]
        assert field is not None  # a conv's output is a map
        height, width, channels = shapes[map_index]
        groups.append(
            ConvGroup(
                conv=layer.name,
                map=layers[map_index].name,
                map_index=map_index,
                members=tuple(member.name for member in layers[index:end]),
                channels=channels,
                height=height,
                width=width,
                field=field,
            )
        )
    return groups


def group_of(groups: list[ConvGroup], layer: str) -> ConvGroup | None:
    """The group a layer belongs to (a conv or a layer sharing its channels), else None."""
    return next((group for group in groups if layer in group.members), None)


def embedded_layer(model: Sequential) -> str:
    """The layer before the output: what feeds the last dense layer (dropout, the identity at
    inference, is skipped for the layer before it)."""
    names = [layer.name for layer in model.layers]
    kinds = [layer.kind for layer in model.layers]
    last = len(kinds) - 1 - kinds[::-1].index("dense") if "dense" in kinds else len(kinds) - 1
    index = last - 1
    while index > 0 and kinds[index] == "dropout":
        index -= 1
    if index < 0:
        raise ValueError("a network with one layer has no layer before its output")
    return names[index]
