"""Receptive fields (Field.box) against brute force, and the embedded layer against the engine.

A unit's receptive field is found without the geometry: push one input pixel far up, then far
down, and see which units of each map move. Every pixel that moves unit (row, col) must lie in
its box, and every row and column of the box must hold one that does (the box is tight) where
the image holds the whole field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.atlas.geometry import SIDE, Field, conv_groups, embedded_layer, fields
from server.cnn import Sequential, load_model
from server.cnn.architectures import mnist_cnn
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

WEIGHTS = Path(__file__).resolve().parents[2] / "model_weights"
CONV_MODELS = ("mnist_cnn", "mnist_cnn_v1", "tiny", "lenet5")  # shipped models with convolutions
PUSH = 100.0  # far outside [0, 1]: the pushed pixel wins its pooling windows and its ReLUs


def spatial_outputs(model: Sequential, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every map layer's output (N, H, W, C) for (N, 28, 28) images, layer by layer."""
    x = images[..., None].astype(np.float32)
    outputs = {}
    for layer, shape in zip(model.layers, model.output_shapes, strict=True):
        if len(shape) != 3:
            break
        x, _ = layer.forward(x)
        outputs[layer.name] = x
    return outputs


def influence(model: Sequential, image: np.ndarray) -> dict[str, np.ndarray]:
    """For each map layer, which input pixels move which units: (28, 28, H, W) bool."""
    base = spatial_outputs(model, image[None])
    moved = {
        name: np.zeros((SIDE, SIDE, *out.shape[1:3]), dtype=bool) for name, out in base.items()
    }
    for row in range(SIDE):  # one input row at a time: 28 pixels, pushed up and down
        pushed = np.repeat(image[None], 2 * SIDE, axis=0)  # (56, 28, 28)
        cols = np.arange(SIDE)
        pushed[cols, row, cols] += PUSH
        pushed[SIDE + cols, row, cols] -= PUSH
        for name, out in spatial_outputs(model, pushed).items():
            reference = base[name]
            tolerance = 1e-4 * (1.0 + float(np.abs(reference).max()))
            changed = (np.abs(out - reference) > tolerance).any(axis=3)  # (56, H, W)
            moved[name][row] |= changed[:SIDE] | changed[SIDE:]
    return moved


def assert_axis_tight(found: np.ndarray, first: int, size: int, box: range, unit: str) -> None:
    """The rows (or columns) whose pixels move a unit against its box's along one axis: all of
    them where the field lies inside the image; where it is clipped, its end inside the image
    (the clipped end may hold a row no unit sees: a pooling window that does not tile drops it)."""
    if first >= 0 and first + size <= SIDE:
        assert found.tolist() == list(box), f"{unit}: {found} move it"
        return
    assert len(found), f"{unit}: nothing moves it"
    if first >= 0:
        assert found[0] == box.start, f"{unit}: {found} move it"
    if first + size <= SIDE:
        assert found[-1] == box.stop - 1, f"{unit}: {found} move it"


def assert_boxes_match(field: Field, moved: np.ndarray, where: str) -> None:
    """Each unit's moving pixels lie in its box and reach every side of it that is not clipped,
    filling every row and column of a box the image holds whole."""
    _, _, height, width = moved.shape
    for row in range(height):
        for col in range(width):
            top, left, bottom, right = field.box(row, col)
            pixels = moved[:, :, row, col]  # (28, 28)
            unit = f"{where} unit ({row}, {col}) with box {(top, left, bottom, right)}"
            outside = pixels.copy()
            outside[top:bottom, left:right] = False
            assert not outside.any(), f"{unit} moves with pixels {np.argwhere(outside)[:5]}"
            first_row, first_col = field.start + row * field.jump, field.start + col * field.jump
            rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
            assert_axis_tight(rows, first_row, field.size, range(top, bottom), f"{unit}, rows")
            assert_axis_tight(cols, first_col, field.size, range(left, right), f"{unit}, cols")


def check_fields(model: Sequential, rng: np.random.Generator) -> None:
    image = rng.uniform(0.0, 1.0, (SIDE, SIDE)).astype(np.float32)
    moved = influence(model, image)
    by_layer = fields(model)
    for layer, field in zip(model.layers, by_layer, strict=True):
        if layer.name in moved:
            assert field is not None, layer.name
            assert_boxes_match(field, moved[layer.name], layer.name)
        else:
            assert field is None, f"{layer.name} outputs a vector but has a field {field}"
    groups = conv_groups(model)
    assert [g.conv for g in groups] == [
        layer.name for layer in model.layers if isinstance(layer, Conv2D)
    ]
    for group in groups:
        assert group.map in group.members
        assert moved[group.map].shape[2:] == (group.height, group.width)
        assert_boxes_match(group.field, moved[group.map], f"{group.conv}'s map {group.map}")


@pytest.mark.parametrize("name", CONV_MODELS)
def test_shipped_models_fields_match_brute_force(name: str, rng: np.random.Generator) -> None:
    check_fields(load_model(WEIGHTS / f"{name}.npz").model, rng)


def random_conv_net(rng: np.random.Generator) -> Sequential:
    """Two or three convolutions of random kernel, stride (no larger than the kernel: no gaps in
    a field), padding, each with or without batch norm, an activation and a pooling layer."""
    while True:
        layers: list[Layer] = []
        channels, side = 1, SIDE
        try:
            for i in range(int(rng.integers(2, 4))):
                kernel = int(rng.integers(1, 6))
                stride = int(rng.integers(1, min(kernel, 2) + 1))
                padding = rng.choice(["same", "valid", str(rng.integers(0, kernel))])
                out = int(rng.integers(2, 5))
                pad = padding if padding in ("same", "valid") else int(padding)
                layers.append(Conv2D(f"conv{i}", channels, out, kernel, stride, pad, rng=rng))
                channels = out
                if rng.random() < 0.5:
                    norm = BatchNorm(f"bn{i}", out)
                    norm.params["gamma"] = rng.uniform(0.5, 2.0, out).astype(np.float32)
                    norm.params["beta"] = rng.normal(0.0, 0.5, out).astype(np.float32)
                    norm.buffers["running_mean"] = rng.normal(0.0, 0.5, out).astype(np.float32)
                    norm.buffers["running_var"] = rng.uniform(0.5, 2.0, out).astype(np.float32)
                    layers.append(norm)
                activation = int(rng.integers(0, 3))
                if activation:
                    layers.append(ReLU(f"act{i}") if activation == 1 else Tanh(f"act{i}"))
                if rng.random() < 0.5:
                    size = int(rng.integers(2, 4))
                    pool = MaxPool2D if rng.random() < 0.5 else AvgPool2D
                    layers.append(pool(f"pool{i}", size, int(rng.integers(1, size + 1))))
            shape = Sequential(layers, (SIDE, SIDE, 1)).output_shapes[-1]
            side = min(shape[0], shape[1])
        except ValueError:  # a kernel larger than its input
            continue
        if side < 2:
            continue
        flat = int(np.prod(shape))
        layers += [Flatten("flatten"), Dense("fc", flat, 10, rng=rng)]
        return Sequential(layers, (SIDE, SIDE, 1))


@pytest.mark.parametrize("seed", range(4))
def test_random_architectures_fields_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = random_conv_net(rng)
    check_fields(model, rng)


def test_no_convolution_no_group() -> None:
    assert conv_groups(load_model(WEIGHTS / "mlp.npz").model) == []


# --- the embedded layer --------------------------------------------------------------------


def with_dropouts(seed: int = 0) -> Sequential:
    """A dense head with two dropouts before its output and a ReLU after a first dense."""
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D("c", 1, 2, 3, rng=rng),
            Flatten("f"),
            Dense("d1", 28 * 28 * 2, 16, rng=rng),
            ReLU("r"),
            Dropout("drop1", 0.3),
            Dropout("drop2", 0.2),
            Dense("out", 16, 10, rng=rng),
        ],
        input_shape=(SIDE, SIDE, 1),
    )


MODELS = {
    **{
        name: lambda name=name: load_model(WEIGHTS / f"{name}.npz").model
        for name in (*CONV_MODELS, "mlp")
    },
    "mnist_cnn(seed=3)": lambda: mnist_cnn(seed=3),
    "with_dropouts": with_dropouts,
}
EXPECTED = {
    "mnist_cnn": "relu4",  # the three-conv network: relu3 follows its third conv
    "mnist_cnn_v1": "relu3",
    "tiny": "flatten",
    "lenet5": "tanh4",
    "mlp": "relu1",
    "mnist_cnn(seed=3)": "relu3",
    "with_dropouts": "r",
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_embedded_layer_is_what_feeds_the_last_dense_layer(
    name: str, rng: np.random.Generator
) -> None:
    """Its output, through the last dense layer and what follows, gives the logits."""
    model = MODELS[name]()
    embedded = embedded_layer(model)
    assert embedded == EXPECTED[name]
    names = [layer.name for layer in model.layers]
    last_dense = max(i for i, layer in enumerate(model.layers) if isinstance(layer, Dense))
    between = model.layers[names.index(embedded) + 1 : last_dense]
    assert all(isinstance(layer, Dropout) for layer in between), [b.name for b in between]
    x = rng.uniform(0.0, 1.0, (3, SIDE, SIDE, 1)).astype(np.float32)
    logits, kept = model.forward_keeping(x, {embedded})
    head = kept[embedded]
    for layer in model.layers[last_dense:]:
        head, _ = layer.forward(head)
    np.testing.assert_allclose(head, logits, rtol=1e-6, atol=1e-6)


def test_embedded_layer_refuses_a_network_of_one_layer() -> None:
    model = Sequential([Flatten("f")], input_shape=(SIDE, SIDE, 1))
    with pytest.raises(ValueError, match="one layer"):
        embedded_layer(model)
