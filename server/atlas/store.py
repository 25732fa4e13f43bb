"""An atlas on disk: one .npz beside the weights (`atlas/<stem>.npz`), no pickle, and the
fingerprint of the weights it was computed for, so a retrained model never shows a stale one."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from server.atlas.geometry import Field
from server.cnn.serialize import write_npz

FORMAT = 1
EXAMPLES = 9  # patches that excite a channel most


class AtlasFileError(ValueError):
    """An atlas file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ChannelAtlas:
    """One convolution's channels: their top examples and ideal inputs."""

    conv: str
    map: str  # the layer whose values rank the examples
    members: tuple[str, ...]  # the layers that share these channels
    field: Field
    index: np.ndarray  # (C, 9) int32: test-set index of each example digit, best first
    row: np.ndarray  # (C, 9) int16: where in `map` it peaks
    col: np.ndarray  # (C, 9) int16
    value: np.ndarray  # (C, 9) float32: the map's value there
    ideal: np.ndarray  # (C, size, size) float32 in [0, 1]: the optimised input of the centre unit
    ideal_box: tuple[int, int, int, int]  # where the centre unit's field lies in the input
    ideal_value: np.ndarray  # (C,) float32: the centre unit's value for that input alone


@dataclass(frozen=True)
class Atlas:
    """What `convscope atlas` computed for one set of weights."""

    weights: str  # state_sha256 of the weights it belongs to
    layer: str  # the embedded layer (before the output)
    method: str  # "tsne" or "pca"
    index: np.ndarray  # (M,) int32, sorted: the test digits held
    pixels: np.ndarray  # (M, 28, 28) uint8, MNIST's own
    labels: np.ndarray  # (M,) uint8
    probabilities: np.ndarray  # (M, 10) float32: the model's reading
    xy: np.ndarray  # (M, 2) float32 in [-1, 1]: the 2-D map
    test_labels: np.ndarray  # (10000,) uint8: every test digit's label
    test_predicted: np.ndarray  # (10000,) uint8: and the model's answer
    channels: dict[str, ChannelAtlas]  # by conv name
    class_images: np.ndarray  # (10, 28, 28) float32 in [0, 1]
    class_probabilities: np.ndarray  # (10,) float32

    @cached_property
    def predicted(self) -> np.ndarray:
        """(M,) the model's answer for each held digit (worked out once: requests read it)."""
        return self.probabilities.argmax(axis=1)

    def position(self, test_index: int) -> int | None:
        """Where a test digit sits among the held ones; None if the atlas does not hold it."""
        at = int(np.searchsorted(self.index, test_index))
        return at if at < len(self.index) and int(self.index[at]) == test_index else None


def atlas_path(weights: Path) -> Path:
    """Where the atlas of a weights file lives: `atlas/<stem>.npz` beside it."""
    return weights.parent / "atlas" / f"{weights.stem}.npz"


def save_atlas(path: Path, atlas: Atlas) -> None:
    """Write atomically; patches and images as float16, which they need no more than."""
    header: dict[str, Any] = {
        "format": FORMAT,
        "weights": atlas.weights,
        "layer": atlas.layer,
        "method": atlas.method,
        "channels": [],
    }
    arrays: dict[str, np.ndarray] = {
        "index": atlas.index.astype(np.int32),
        "pixels": atlas.pixels.astype(np.uint8),
        "labels": atlas.labels.astype(np.uint8),
        "probabilities": atlas.probabilities.astype(np.float16),
        "xy": atlas.xy.astype(np.float32),
        "test_labels": atlas.test_labels.astype(np.uint8),
        "test_predicted": atlas.test_predicted.astype(np.uint8),
        "class_images": atlas.class_images.astype(np.float16),
        "class_probabilities": atlas.class_probabilities.astype(np.float32),
    }
    for name, channel in atlas.channels.items():
        header["channels"].append(
            {
                "conv": name,
                "map": channel.map,
                "members": list(channel.members),
                "field": [channel.field.size, channel.field.jump, channel.field.start],
                "ideal_box": list(channel.ideal_box),
            }
        )
        arrays[f"{name}/index"] = channel.index.astype(np.int32)
        arrays[f"{name}/row"] = channel.row.astype(np.int16)
        arrays[f"{name}/col"] = channel.col.astype(np.int16)
        arrays[f"{name}/value"] = channel.value.astype(np.float32)
        arrays[f"{name}/ideal"] = channel.ideal.astype(np.float16)
        arrays[f"{name}/ideal_value"] = channel.ideal_value.astype(np.float32)
    arrays["header"] = np.array(json.dumps(header))
    write_npz(path, arrays)


def load_atlas(path: Path) -> Atlas:
    """Read an atlas; AtlasFileError naming the file for anything unreadable."""
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        header = json.loads(str(arrays.pop("header")))
        if header.get("format") != FORMAT:
            raise AtlasFileError(f"{path}: atlas format {header.get('format')}, expected {FORMAT}")
        channels = {
            entry["conv"]: ChannelAtlas(
                conv=entry["conv"],
                map=entry["map"],
                members=tuple(entry["members"]),
                field=Field(*entry["field"]),
                index=arrays[f"{entry['conv']}/index"],
                row=arrays[f"{entry['conv']}/row"],
                col=arrays[f"{entry['conv']}/col"],
                value=arrays[f"{entry['conv']}/value"],
                ideal=arrays[f"{entry['conv']}/ideal"].astype(np.float32),
                ideal_box=tuple(entry["ideal_box"]),
                ideal_value=arrays[f"{entry['conv']}/ideal_value"],
            )
            for entry in header["channels"]
        }
        return Atlas(
            weights=header["weights"],
            layer=header["layer"],
            method=header["method"],
            index=arrays["index"],
            pixels=arrays["pixels"],
            labels=arrays["labels"],
            probabilities=arrays["probabilities"].astype(np.float32),
            xy=arrays["xy"],
            test_labels=arrays["test_labels"],
            test_predicted=arrays["test_predicted"],
            channels=channels,
            class_images=arrays["class_images"].astype(np.float32),
            class_probabilities=arrays["class_probabilities"],
        )
    except AtlasFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        raise AtlasFileError(f"{os.fspath(path)}: not a readable atlas ({error})") from error
