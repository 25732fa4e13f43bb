"""`convscope atlas WEIGHTS` end to end on a synthetic MNIST directory (30 test digits): the
file it writes beside the weights, served with them, holding what build.py promises, and a PCA
map (too few digits for t-SNE) that is the digits' two principal components. Then the start of
the ideal inputs' ascent: an example moved to the centre unit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import server.cli.atlas
from server.atlas.build import AtlasConfig, build_atlas, paste
from server.atlas.geometry import conv_groups
from server.atlas.ideal import AscentConfig
from server.atlas.store import atlas_path, load_atlas
from server.cnn import Sequential, save_model
from server.cnn.architectures import mnist_cnn
from server.cnn.layers import Conv2D, Dense, Flatten, Layer, ReLU
from server.cnn.serialize import state_sha256
from server.inference import Predictor
from server.training.mnist import load_mnist


def test_convscope_atlas_writes_an_atlas_beside_the_weights(
    synthetic_mnist_dir: tuple[Path, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir, _ = synthetic_mnist_dir
    model = mnist_cnn(seed=4, conv1=4, conv2=8, hidden=16)
    weights = tmp_path / "models" / "small.npz"
    save_model(weights, model, {})
    assert server.cli.atlas.main([str(weights), "--data-dir", str(data_dir), "--quiet"]) == 0

    written = atlas_path(weights)
    assert written == tmp_path / "models" / "atlas" / "small.npz"
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    atlas = load_atlas(written)
    assert summary["weights"] == str(weights)
    assert summary["atlas"] == str(written)
    assert summary["bytes"] == written.stat().st_size
    assert summary["digits"] == len(atlas.index)
    assert summary["map"] == atlas.method == "pca"
    assert atlas.weights == state_sha256(model.state_dict())
    served = Predictor.from_file(weights).atlas
    assert served is not None

    data = load_mnist(data_dir)
    images, labels = data.test_images, data.test_labels
    np.testing.assert_array_equal(atlas.test_labels, labels)
    logits = model.forward((images.astype(np.float32) / 255.0)[..., None])
    np.testing.assert_array_equal(atlas.test_predicted, logits.argmax(axis=1))
    # with fewer digits of a class than the sample takes, it holds every misread digit and
    # every example, and nothing else
    misread = np.flatnonzero(labels != logits.argmax(axis=1))
    examples = np.concatenate([channel.index.ravel() for channel in atlas.channels.values()])
    np.testing.assert_array_equal(atlas.index, np.union1d(misread, examples))
    np.testing.assert_array_equal(atlas.pixels, images[atlas.index])
    assert atlas.layer == "relu3"
    groups = conv_groups(model)
    assert [atlas.channels[g.conv].index.shape for g in groups] == [(4, 9), (8, 9)]
    assert atlas.class_images.shape == (10, 28, 28)

    # the map: the held digits' two principal components in the embedded layer, scaled into
    # [-1, 1] (up to the sign of each)
    _, kept = model.forward_keeping((atlas.pixels.astype(np.float32) / 255.0)[..., None], {"relu3"})
    features = kept["relu3"].astype(np.float64)
    centred = features - features.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    components = centred @ vectors[:, ::-1][:, :2]  # (M, 2)
    for axis in range(2):
        correlation = np.corrcoef(components[:, axis], atlas.xy[:, axis])[0, 1]
        assert abs(correlation) == pytest.approx(1.0, abs=1e-4), f"axis {axis}: {correlation}"
    spread = components.std(axis=0)
    assert atlas.xy.std(axis=0)[1] / atlas.xy.std(axis=0)[0] == pytest.approx(
        spread[1] / spread[0], rel=1e-4
    ), "one scale for both axes"
    assert np.abs(atlas.xy).max() == pytest.approx(1.0)
    np.testing.assert_allclose(atlas.xy.mean(axis=0), 0.0, atol=1e-6)


# --- the ascent's start: an example moved to the centre unit -------------------------------


def deep_net(seed: int = 0) -> Sequential:
    """Four convolutions: fields of 29 and 45 pixels, wider than the image around its centre."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (kernel, stride) in enumerate([(5, 2), (5, 2), (5, 2), (3, 1)]):
        layers += [Conv2D(f"c{i}", 1 if i == 0 else 4, 4, kernel, stride, rng=rng), ReLU(f"r{i}")]
    return Sequential([*layers, Flatten("f"), Dense("d", 4 * 4 * 4, 10, rng=rng)], (28, 28, 1))


def test_an_example_moved_to_the_centre_excites_the_centre_unit_as_much(
    make_digits: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    """A first convolution sees only its field (and zero padding outside the image, which a
    blank image gives too): the pasted example gives the centre unit the example's value."""
    model = mnist_cnn(seed=1, conv1=4, conv2=8, hidden=16)
    group = conv_groups(model)[0]
    images, _ = make_digits(3, seed=5)
    for row, col in [(0, 0), (5, 27), (14, 14), (27, 3), (27, 27)]:
        pasted = paste(images, group, 2, row, col)
        x = np.stack([images[2] / 255.0, pasted])[..., None].astype(np.float32)
        _, kept = model.forward_keeping(x, {group.map})
        saw = kept[group.map][0, row, col]  # (C,)
        centre = kept[group.map][1, group.centre[0], group.centre[1]]
        np.testing.assert_allclose(centre, saw, rtol=1e-5, atol=1e-6, err_msg=f"{(row, col)}")


def test_fields_wider_than_the_image_still_make_an_atlas(
    make_digits: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> None:
    """An example moved to the centre loses what falls outside the image, and the atlas is made
    (convscope train --arch-file makes one at its end)."""
    model = deep_net()
    groups = conv_groups(model)
    assert max(group.field.size for group in groups) > 28
    images, labels = make_digits(40, seed=6)
    for group in groups:
        for row, col in [(0, 0), (group.height - 1, group.width - 1), (0, group.width - 1)]:
            pasted = paste(images, group, 0, row, col)
            assert pasted.shape == (28, 28)
            assert 0.0 <= pasted.min() <= pasted.max() <= 1.0
    quick = AtlasConfig(ascent=AscentConfig(steps=4, polish=2))
    atlas = build_atlas(model, images, labels, quick)
    for group in groups:
        top, left, bottom, right = group.field.box(*group.centre)
        channel = atlas.channels[group.conv]
        assert channel.ideal.shape == (group.channels, bottom - top, right - left)
        assert np.isfinite(channel.ideal_value).all()
