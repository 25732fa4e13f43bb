"""The shipped atlases against the engine on MNIST's test digits: each example is where its
digit's map peaks, no sampled digit beats the ninth example, the ideal input excites its unit
more than the best example, the class inputs and every stored reading are the model's own.

Needs MNIST ($MNIST_DIR); what the atlas says is recomputed here with Sequential.trace, the pass
the API shows a digit's maps with, not the batched pass that built the atlas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from server.atlas.geometry import ConvGroup, conv_groups, embedded_layer
from server.atlas.store import Atlas
from server.cnn import Sequential
from server.inference import Predictor
from server.training.mnist import Mnist

WEIGHTS = Path(__file__).resolve().parents[2] / "model_weights"
SAMPLE = 250  # random test digits, and as many of the atlas's held ones
CHUNK = 100  # digits traced at once: a trace keeps every layer's cache
FLOAT16 = 2e-3  # relative: the atlas keeps images and probabilities as float16


def close(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Equal but for float32 summation order (a batch of another size)."""
    return np.isclose(a, b, rtol=1e-5, atol=1e-5)


@dataclass(frozen=True)
class Traced:
    """What the engine makes of some test digits."""

    index: np.ndarray  # (N,) sorted test-set indices
    probabilities: np.ndarray  # (N, 10)
    maps: dict[str, np.ndarray]  # by map layer name: (N, H, W, C)


def trace(
    model: Sequential, images: np.ndarray, names: set[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Probabilities (N, 10) and the named layers' outputs for uint8 images (N, 28, 28), a chunk
    at a time through Sequential.trace."""
    probabilities, maps = [], {name: [] for name in names}
    for start in range(0, len(images), CHUNK):
        x = (images[start : start + CHUNK].astype(np.float32) / 255.0)[..., None]
        seen = model.trace(x)
        probabilities.append(softmax64(seen.logits))
        for layer in seen.layers:
            if layer.name in names:
                maps[layer.name].append(layer.output)
    return np.concatenate(probabilities), {n: np.concatenate(p) for n, p in maps.items()}


def softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Shipped:
    name: str
    model: Sequential
    atlas: Atlas
    metadata: dict
    groups: list[ConvGroup]
    examples: Traced  # every channel's example digits
    sample: Traced  # SAMPLE random test digits and SAMPLE held ones


def traced_at(images: np.ndarray, model: Sequential, index: np.ndarray, names: set[str]) -> Traced:
    probabilities, maps = trace(model, images[index], names)
    return Traced(index, probabilities, maps)


@pytest.fixture(scope="module", params=["mnist_cnn", "tiny"])
def shipped(request: pytest.FixtureRequest, mnist: Mnist) -> Shipped:
    predictor = Predictor.from_file(WEIGHTS / f"{request.param}.npz")
    atlas = predictor.atlas
    assert atlas is not None, f"{request.param} ships without a usable atlas"
    model, groups = predictor.model, conv_groups(predictor.model)
    maps = {group.map for group in groups}
    examples = np.unique(np.concatenate([atlas.channels[g.conv].index.ravel() for g in groups]))
    rng = np.random.default_rng(0)
    sample = np.unique(
        np.concatenate(
            [
                rng.choice(len(mnist.test_labels), SAMPLE, replace=False),
                rng.choice(atlas.index, SAMPLE, replace=False),
            ]
        )
    )
    return Shipped(
        request.param,
        model,
        atlas,
        predictor.metadata,
        groups,
        traced_at(mnist.test_images, model, examples, maps),
        traced_at(mnist.test_images, model, sample, maps),
    )


def rows_of(traced: Traced, index: np.ndarray) -> np.ndarray:
    at = np.searchsorted(traced.index, index)
    assert (traced.index[at] == index).all()
    return at


# --- what each filter looks for ------------------------------------------------------------


def test_every_conv_has_its_channels_in_the_atlas(shipped: Shipped) -> None:
    assert list(shipped.atlas.channels) == [group.conv for group in shipped.groups]
    for group in shipped.groups:
        channel = shipped.atlas.channels[group.conv]
        assert (channel.map, channel.members, channel.field) == (
            group.map,
            group.members,
            group.field,
        )
        for array in (channel.index, channel.row, channel.col, channel.value):
            assert array.shape == (group.channels, 9), (group.conv, array.shape)


def test_each_example_is_where_its_digit_peaks_in_the_channel(shipped: Shipped) -> None:
    """value = the map at (row, col) for that digit = the digit's maximum over the channel."""
    for group in shipped.groups:
        channel = shipped.atlas.channels[group.conv]
        maps = shipped.examples.maps[group.map]  # (N, H, W, C)
        for c in range(group.channels):
            at = rows_of(shipped.examples, channel.index[c])
            where = f"{shipped.name} {group.map} channel {c}"
            assert len(set(channel.index[c].tolist())) == 9, f"{where}: a digit twice"
            there = maps[at, channel.row[c], channel.col[c], c]  # (9,)
            peak = maps[at, :, :, c].max(axis=(1, 2))  # (9,)
            assert close(channel.value[c], there).all(), f"{where}: {channel.value[c]} {there}"
            assert close(channel.value[c], peak).all(), f"{where}: {channel.value[c]} {peak}"
            assert (np.diff(channel.value[c]) <= 0).all(), f"{where}: not highest first"


def test_no_sampled_digit_beats_the_ninth_example(shipped: Shipped) -> None:
    sample = shipped.sample
    for group in shipped.groups:
        channel = shipped.atlas.channels[group.conv]
        peaks = sample.maps[group.map].max(axis=(1, 2))  # (N, C)
        for c in range(group.channels):
            others = ~np.isin(sample.index, channel.index[c])
            ninth = channel.value[c, -1]
            beaten = peaks[others, c] > ninth + 1e-5 * max(1.0, abs(float(ninth)))
            assert not beaten.any(), (
                f"{shipped.name} {group.map} channel {c}: test digits "
                f"{sample.index[others][beaten][:5]} peak at {peaks[others, c][beaten][:5]}, "
                f"above the ninth example's {ninth}"
            )


def ideal_unit(shipped: Shipped, group: ConvGroup) -> np.ndarray:
    """(C,) the centre unit of each channel for a blank image holding its stored ideal patch at
    ideal_box, by the engine."""
    channel = shipped.atlas.channels[group.conv]
    top, left, bottom, right = channel.ideal_box
    assert channel.ideal_box == group.field.box(*group.centre)
    assert channel.ideal.shape == (group.channels, bottom - top, right - left)
    assert 0.0 <= channel.ideal.min() <= channel.ideal.max() <= 1.0
    images = np.zeros((group.channels, 28, 28, 1), dtype=np.float32)
    images[:, top:bottom, left:right, 0] = channel.ideal  # channel c's patch in image c
    seen = {t.name: t.output for t in shipped.model.trace(images).layers}
    row, col = group.centre
    each = np.arange(group.channels)
    return seen[group.map][each, row, col, each]


def test_ideal_input_excites_its_unit_more_than_the_best_example(shipped: Shipped) -> None:
    """Its unit's value is ideal_value; at least the best example's value for every channel,
    more for most of the model's channels (not all: the best digit may already be the optimum,
    see the next test)."""
    more, channels = 0, 0
    for group in shipped.groups:
        channel = shipped.atlas.channels[group.conv]
        unit = ideal_unit(shipped, group)
        slack = 10 * FLOAT16 * np.maximum(1.0, np.abs(unit))  # the patch was float32 then
        assert (np.abs(channel.ideal_value - unit) <= slack).all(), (
            f"{shipped.name} {group.map}: ideal_value {channel.ideal_value} but the engine "
            f"gives {unit} for the stored patches"
        )
        best = channel.value[:, 0]
        worse = unit < best - slack
        assert not worse.any(), (
            f"{shipped.name} {group.map}: channels {np.flatnonzero(worse)} excite their unit "
            f"less with the ideal input ({unit[worse]}) than with their best example "
            f"({best[worse]})"
        )
        more, channels = more + int((unit > best).sum()), channels + group.channels
    assert more >= 0.75 * channels, f"{shipped.name}: {more} of {channels} beat the best example"


def test_first_layers_ideal_input_reaches_the_optimum(shipped: Shipped) -> None:
    """A convolution of the input (and its batch norm) is affine in the pixels of its field:
    over [0, 1] its largest value puts 1 where the kernel (times the norm's scale) is positive,
    0 elsewhere. The ideal input comes within 1% of it (an ascent, not a solver)."""
    group = shipped.groups[0]
    conv = shipped.model.layers[0]
    assert conv.name == group.conv
    kernels = conv.params["weight"][:, :, 0, :].astype(np.float64)  # (k, k, C)
    bias = conv.params["bias"] if "bias" in conv.params else np.zeros(group.channels)
    scale, shift = np.ones(group.channels), np.zeros(group.channels)
    if group.map != group.conv:  # y = gamma * (x - mean) / sqrt(var + eps) + beta
        norm = shipped.model.layer(group.map)
        scale = norm.params["gamma"] / np.sqrt(norm.buffers["running_var"] + norm.eps)
        shift = norm.params["beta"] - scale * norm.buffers["running_mean"]
    weights = kernels * scale  # (k, k, C): the map's value is weights . pixels + the rest
    optimum = np.maximum(weights, 0).sum(axis=(0, 1)) + scale * bias + shift
    unit = ideal_unit(shipped, group)
    tolerance = 1e-5 * np.maximum(1.0, np.abs(optimum))
    assert (unit <= optimum + tolerance).all(), f"above the optimum {optimum}: {unit}"
    short = unit < optimum - 0.01 * np.abs(optimum)
    assert not short.any(), (
        f"{shipped.name} {group.map}: channels {np.flatnonzero(short)}'s ideal inputs give "
        f"{unit[short]}, more than 1% short of the optimum {optimum[short]}"
    )


def test_class_inputs_are_read_as_their_class_with_the_stored_probability(
    shipped: Shipped,
) -> None:
    atlas = shipped.atlas
    assert atlas.class_images.shape == (10, 28, 28)
    assert 0.0 <= atlas.class_images.min() <= atlas.class_images.max() <= 1.0
    images = atlas.class_images[..., None].astype(np.float32)  # as stored: float16 values
    probabilities = softmax64(shipped.model.trace(images).logits)
    diagonal = probabilities[np.arange(10), np.arange(10)]
    np.testing.assert_allclose(atlas.class_probabilities, diagonal, atol=FLOAT16)
    assert (diagonal > 0.9).all(), diagonal


# --- the digits it holds -------------------------------------------------------------------


def test_held_digits_are_mnists_with_the_models_readings(shipped: Shipped, mnist: Mnist) -> None:
    atlas = shipped.atlas
    assert atlas.layer == embedded_layer(shipped.model)
    np.testing.assert_array_equal(atlas.pixels, mnist.test_images[atlas.index])
    np.testing.assert_array_equal(atlas.labels, mnist.test_labels[atlas.index])
    np.testing.assert_array_equal(atlas.test_labels, mnist.test_labels)
    sample = shipped.sample
    predicted = sample.probabilities.argmax(axis=1)
    np.testing.assert_array_equal(atlas.test_predicted[sample.index], predicted)
    held = np.isin(sample.index, atlas.index)
    assert held.sum() >= SAMPLE
    positions = [atlas.position(int(i)) for i in sample.index[held]]
    np.testing.assert_allclose(
        atlas.probabilities[positions], sample.probabilities[held], atol=FLOAT16
    )
    np.testing.assert_array_equal(atlas.predicted[positions], predicted[held])


def test_confusion_cells_add_up_to_the_model_cards_matrix(shipped: Shipped) -> None:
    atlas = shipped.atlas
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (atlas.test_labels, atlas.test_predicted), 1)
    np.testing.assert_array_equal(counts, np.array(shipped.metadata["confusion_matrix"]))
