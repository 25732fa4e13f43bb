"""The committed atlases: one per shipped model, within the size budget (3 MB, issue 20), made
for the weights beside them, and holding what the atlas routes promise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.atlas.geometry import conv_groups, embedded_layer
from server.atlas.store import atlas_path, load_atlas
from server.cnn import load_model
from server.cnn.serialize import state_sha256
from server.inference import Predictor

WEIGHTS = Path(__file__).resolve().parents[1] / "model_weights"
MODELS = sorted(path.stem for path in WEIGHTS.glob("*.npz"))
MAX_BYTES = 3_000_000
MIN_DIGITS = 2000


def test_every_shipped_model_has_an_atlas() -> None:
    assert MODELS == ["lenet5", "mlp", "mnist_cnn", "mnist_cnn_v1", "tiny"]
    assert sorted(p.stem for p in (WEIGHTS / "atlas").glob("*.npz")) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_atlas_is_small_and_belongs_to_its_weights(name: str) -> None:
    weights = WEIGHTS / f"{name}.npz"
    path = atlas_path(weights)
    assert path.stat().st_size <= MAX_BYTES, f"{path} is {path.stat().st_size} bytes"
    model = load_model(weights).model
    atlas = load_atlas(path)
    assert atlas.weights == state_sha256(model.state_dict())
    assert Predictor.from_file(weights).atlas is not None  # what the server does with it
    assert atlas.layer == embedded_layer(model)


@pytest.mark.parametrize("name", MODELS)
def test_atlas_holds_what_the_routes_promise(name: str) -> None:
    model = load_model(WEIGHTS / f"{name}.npz").model
    atlas = load_atlas(atlas_path(WEIGHTS / f"{name}.npz"))
    held = len(atlas.index)
    assert held >= MIN_DIGITS
    assert (np.diff(atlas.index) > 0).all(), "held digits sorted, each once"
    assert 0 <= atlas.index.min() <= atlas.index.max() < 10000
    assert atlas.pixels.shape == (held, 28, 28)
    assert atlas.labels.shape == (held,)
    assert atlas.probabilities.shape == (held, 10)
    np.testing.assert_allclose(atlas.probabilities.sum(axis=1), 1.0, atol=1e-2)
    assert atlas.xy.shape == (held, 2)
    assert np.abs(atlas.xy).max() <= 1.0
    assert atlas.method in ("tsne", "pca")
    assert atlas.test_labels.shape == atlas.test_predicted.shape == (10000,)
    misread = np.flatnonzero(atlas.test_labels != atlas.test_predicted)
    assert np.isin(misread, atlas.index).all(), "every misread digit is held"
    groups = conv_groups(model)
    assert list(atlas.channels) == [group.conv for group in groups]
    for group in groups:
        channel = atlas.channels[group.conv]
        assert channel.index.shape == (group.channels, 9), group.conv
        assert np.isin(channel.index, atlas.index).all(), f"{group.conv}: an example not held"
        assert channel.ideal_value.shape == (group.channels,)
    assert atlas.class_images.shape == (10, 28, 28)
    assert atlas.class_probabilities.shape == (10,)
