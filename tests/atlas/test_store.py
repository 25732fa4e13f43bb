"""An atlas on disk: what is saved is what loads (float16 where the file says so), an atlas of
other weights is not served, and an unreadable one is skipped with a warning, the model served."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.atlas.geometry import Field
from server.atlas.store import (
    Atlas,
    AtlasFileError,
    ChannelAtlas,
    atlas_path,
    load_atlas,
    save_atlas,
)
from server.cnn import load_model, save_model
from server.cnn.serialize import state_sha256
from server.inference import Predictor

WEIGHTS = Path(__file__).resolve().parents[2] / "model_weights"
HALF = ("probabilities", "class_images")  # stored as float16
CHANNEL_HALF = ("ideal",)


def random_atlas(rng: np.random.Generator, held: int = 40) -> Atlas:
    """Every field filled with random values of its documented shape."""

    def channel(name: str, channels: int, size: int) -> ChannelAtlas:
        return ChannelAtlas(
            conv=name,
            map=f"bn_{name}",
            members=(name, f"bn_{name}", f"relu_{name}"),
            field=Field(size, 2, -1),
            index=rng.integers(0, 10000, (channels, 9)).astype(np.int32),
            row=rng.integers(0, 14, (channels, 9)).astype(np.int16),
            col=rng.integers(0, 14, (channels, 9)).astype(np.int16),
            value=np.sort(rng.normal(size=(channels, 9)), axis=1)[:, ::-1].astype(np.float32),
            ideal=rng.uniform(0, 1, (channels, size, size)).astype(np.float32),
            ideal_box=(10, 11, 10 + size, 11 + size),
            ideal_value=rng.normal(size=channels).astype(np.float32),
        )

    probabilities = rng.dirichlet(np.ones(10), held).astype(np.float32)
    return Atlas(
        weights="ab" * 32,
        layer="relu3",
        method="pca",
        index=np.sort(rng.choice(10000, held, replace=False)).astype(np.int32),
        pixels=rng.integers(0, 256, (held, 28, 28)).astype(np.uint8),
        labels=rng.integers(0, 10, held).astype(np.uint8),
        probabilities=probabilities,
        xy=rng.uniform(-1, 1, (held, 2)).astype(np.float32),
        test_labels=rng.integers(0, 10, 10000).astype(np.uint8),
        test_predicted=rng.integers(0, 10, 10000).astype(np.uint8),
        channels={"conv1": channel("conv1", 3, 3), "conv2": channel("conv2", 5, 8)},
        class_images=rng.uniform(0, 1, (10, 28, 28)).astype(np.float32),
        class_probabilities=rng.uniform(0.9, 1, 10).astype(np.float32),
    )


def assert_same(loaded: Any, saved: Any, half: tuple[str, ...], where: str = "") -> None:
    """Field by field: arrays equal in value (float16 ones as float16 keeps them), shape and
    kind of number; everything else equal."""
    for field in dataclasses.fields(saved):
        got, want = getattr(loaded, field.name), getattr(saved, field.name)
        name = f"{where}{field.name}"
        if isinstance(want, np.ndarray):
            expected = want.astype(np.float16).astype(np.float32) if field.name in half else want
            assert isinstance(got, np.ndarray), name
            assert got.shape == want.shape, name
            assert got.dtype.kind == want.dtype.kind, (name, got.dtype, want.dtype)
            np.testing.assert_array_equal(got, expected, err_msg=name)
        elif isinstance(want, dict):
            assert list(got) == list(want), name
            for key in want:
                assert_same(got[key], want[key], CHANNEL_HALF, f"{name}[{key}].")
        else:
            assert got == want, name


def test_save_then_load_gives_back_every_field(tmp_path: Path, rng: np.random.Generator) -> None:
    atlas = random_atlas(rng)
    path = tmp_path / "atlas" / "model.npz"
    save_atlas(path, atlas)
    assert_same(load_atlas(path), atlas, HALF)
    assert not list(path.parent.glob("*.tmp")), "a temporary file left behind"


def test_a_shipped_atlas_survives_a_round_trip(tmp_path: Path) -> None:
    """Saved again, a loaded atlas loads the same: float16 loses nothing the second time."""
    shipped = load_atlas(WEIGHTS / "atlas" / "tiny.npz")
    save_atlas(tmp_path / "tiny.npz", shipped)
    assert_same(load_atlas(tmp_path / "tiny.npz"), shipped, ())


def test_the_atlas_lives_beside_its_weights() -> None:
    assert atlas_path(Path("/m/model_weights/tiny.npz")) == Path("/m/model_weights/atlas/tiny.npz")


# --- served only for its own weights -------------------------------------------------------


def copy_with_atlas(tmp_path: Path, change: str | None = None) -> Path:
    """The shipped tiny model saved to tmp_path (one number of `change` moved), the shipped
    atlas copied beside it."""
    loaded = load_model(WEIGHTS / "tiny.npz")
    if change is not None:
        loaded.model.state_dict()[change].flat[0] += 1e-3  # a live reference
    path = tmp_path / "tiny.npz"
    save_model(path, loaded.model, loaded.metadata, extras=loaded.extras)
    atlas_path(path).parent.mkdir()
    shutil.copy(WEIGHTS / "atlas" / "tiny.npz", atlas_path(path))
    return path


def test_the_same_weights_saved_again_keep_their_atlas(tmp_path: Path) -> None:
    path = copy_with_atlas(tmp_path)
    atlas = Predictor.from_file(path).atlas
    assert atlas is not None
    assert atlas.weights == state_sha256(load_model(path).model.state_dict())


@pytest.mark.parametrize("change", ["conv2.weight", "bn3.running_var", "fc.bias"])
def test_an_atlas_of_other_weights_is_not_served(
    change: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = copy_with_atlas(tmp_path, change)
    with caplog.at_level(logging.WARNING, "convscope"):
        predictor = Predictor.from_file(path)
    assert predictor.atlas is None
    assert predictor.predict(np.zeros((1, 28, 28))).shape == (1, 10)  # the model is served
    messages = [record.getMessage() for record in caplog.records]
    assert any("other weights" in m and str(atlas_path(path)) in m for m in messages), messages


def test_no_atlas_file_no_atlas_and_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tiny.npz"
    shutil.copy(WEIGHTS / "tiny.npz", path)
    with caplog.at_level(logging.WARNING, "convscope"):
        assert Predictor.from_file(path).atlas is None
    assert not caplog.records


# --- unreadable files ----------------------------------------------------------------------


def garbage(path: Path) -> None:
    path.write_bytes(b"not an atlas at all")


def truncated(path: Path) -> None:
    whole = (WEIGHTS / "atlas" / "tiny.npz").read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def other_format(path: Path) -> None:
    header = '{"format": 99, "weights": "", "layer": "", "method": "", "channels": []}'
    np.savez(path, header=np.array(header))


def missing_arrays(path: Path) -> None:
    header = '{"format": 1, "weights": "", "layer": "", "method": "pca", "channels": []}'
    np.savez(path, header=np.array(header), index=np.arange(3))


def pickled(path: Path) -> None:
    np.savez(path, header=np.array([{"format": 1}], dtype=object))


CORRUPT = {
    "garbage": (garbage, "not a readable atlas"),
    "truncated": (truncated, "not a readable atlas"),
    "other_format": (other_format, "atlas format 99, expected 1"),
    "missing_arrays": (missing_arrays, "not a readable atlas"),
    "pickled": (pickled, "not a readable atlas"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_an_unreadable_atlas_is_skipped_with_a_warning_and_the_model_served(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write, message = CORRUPT[kind]
    path = tmp_path / "tiny.npz"
    shutil.copy(WEIGHTS / "tiny.npz", path)
    atlas_path(path).parent.mkdir()
    write(atlas_path(path))
    with pytest.raises(AtlasFileError) as raised:
        load_atlas(atlas_path(path))
    assert str(raised.value).startswith(f"{atlas_path(path)}: ")
    assert message in str(raised.value)
    with caplog.at_level(logging.WARNING, "convscope"):
        predictor = Predictor.from_file(path)
    assert predictor.atlas is None
    assert predictor.predict(np.zeros((1, 28, 28))).shape == (1, 10)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"skipped atlas: {raised.value}"]
