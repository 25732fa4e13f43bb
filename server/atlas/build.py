"""`convscope atlas`'s work: everything the atlas holds, from a model and MNIST's test set."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.atlas.embedding import embed, held_digits
from server.atlas.examples import read_test_set, top_examples
from server.atlas.geometry import SIDE, ConvGroup, conv_groups, embedded_layer
from server.atlas.ideal import AscentConfig, ascend, class_inputs, unit_objective
from server.atlas.store import Atlas, ChannelAtlas, atlas_path, save_atlas
from server.cnn import Sequential
from server.cnn.serialize import state_sha256

logger = logging.getLogger("convscope")


@dataclass(frozen=True)
class AtlasConfig:
    seed: int = 0
    ascent: AscentConfig = field(default_factory=AscentConfig)


def paste(images: np.ndarray, group: ConvGroup, index: int, row: int, col: int) -> np.ndarray:
    """A blank image holding what unit (row, col) of the map saw of test digit `index`, moved to
    the centre unit's field: the example as a start for the centre unit's ascent. A field wider
    than the image around the centre loses what would land outside it."""
    field = group.field
    top, left, bottom, right = field.box(row, col)
    down = (group.centre[0] - row) * field.jump
    across = (group.centre[1] - col) * field.jump
    to_top, to_left = max(top + down, 0), max(left + across, 0)
    to_bottom, to_right = min(bottom + down, SIDE), min(right + across, SIDE)
    image = np.zeros((SIDE, SIDE), dtype=np.float32)
    image[to_top:to_bottom, to_left:to_right] = (
        images[index, to_top - down : to_bottom - down, to_left - across : to_right - across]
        / 255.0
    )
    return image


def ideal_inputs(
    model: Sequential,
    group: ConvGroup,
    images: np.ndarray,
    examples: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: AscentConfig,
) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """Each channel's ideal patch (C, size, size), the centre unit's box, and its value (C,).

    Two starts, noise and the channel's best example moved to the centre, keep the better:
    the example's start guarantees nothing worse than the example wherever padding allows."""
    objective = unit_objective(model, group)
    channels = group.channels
    noise = np.random.default_rng(config.seed).uniform(0.0, 1.0, (channels, 28, 28))
    index, rows, cols = examples
    start = np.stack(
        [
            paste(images, group, int(index[c, 0]), int(rows[c, 0]), int(cols[c, 0]))
            for c in range(channels)
        ]
    )
    box = group.field.box(*group.centre)
    top, left, bottom, right = box
    mask = np.zeros((28, 28), dtype=np.float32)
    mask[top:bottom, left:right] = 1.0  # only the centre unit's field matters
    found = [ascend(objective, begin, config) for begin in (noise, start)]
    best = (
        np.where((found[1][1] > found[0][1])[:, None, None], found[1][0], found[0][0]) * mask
    )  # (C, 28, 28)
    values, _ = objective(best)  # the patch alone, blank around it
    return best[:, top:bottom, left:right], box, values


def build_atlas(
    model: Sequential, images: np.ndarray, labels: np.ndarray, config: AtlasConfig | None = None
) -> Atlas:
    """The atlas of `model` from test images (N, 28, 28) uint8 and their labels (N,)."""
    config = config or AtlasConfig()
    clock = time.perf_counter()
    groups = conv_groups(model)
    layer = embedded_layer(model)
    seen = read_test_set(model, images, groups, layer)
    predicted = seen.probabilities.argmax(axis=1)
    logger.info("atlas: read %d test digits in %.1f s", len(images), time.perf_counter() - clock)
    channels, example_indices = {}, [np.zeros(0, dtype=np.int64)]
    for group in groups:
        index, rows, cols, values = top_examples(seen.peaks[group.map], group.width)
        began = time.perf_counter()
        ideal, box, ideal_value = ideal_inputs(
            model, group, images, (index, rows, cols), config.ascent
        )
        logger.info("atlas: %s ideal inputs in %.1f s", group.conv, time.perf_counter() - began)
        channels[group.conv] = ChannelAtlas(
            group.conv,
            group.map,
            group.members,
            group.field,
            index,
            rows,
            cols,
            values,
            ideal,
            box,
            ideal_value,
        )
        example_indices.append(index.ravel())
    began = time.perf_counter()
    means = np.stack([images[labels == c].mean(axis=0) / 255.0 for c in range(10)])  # (10, 28, 28)
    class_images, class_probabilities = class_inputs(model, config.ascent, means)
    logger.info("atlas: class inputs in %.1f s", time.perf_counter() - began)
    held = held_digits(labels, predicted, np.concatenate(example_indices), config.seed)
    began = time.perf_counter()
    xy, method = embed(seen.features[held], config.seed)
    logger.info(
        "atlas: %s map of %d digits in %.1f s", method, len(held), time.perf_counter() - began
    )
    return Atlas(
        weights=state_sha256(model.state_dict()),
        layer=layer,
        method=method,
        index=held,
        pixels=images[held],
        labels=labels[held],
        probabilities=seen.probabilities[held].astype(np.float32),
        xy=xy,
        test_labels=labels.astype(np.uint8),
        test_predicted=predicted.astype(np.uint8),
        channels=channels,
        class_images=class_images,
        class_probabilities=class_probabilities,
    )


def write_atlas(
    weights: Path, model: Sequential, images: np.ndarray, labels: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """Build the atlas of `model` (stored at `weights`) and write it beside; what was written."""
    began = time.perf_counter()
    atlas = build_atlas(model, images, labels, AtlasConfig(seed=seed))
    out = atlas_path(weights)
    save_atlas(out, atlas)
    return {
        "atlas": str(out),
        "bytes": out.stat().st_size,
        "digits": len(atlas.index),
        "map": atlas.method,
        "seconds": round(time.perf_counter() - began, 1),
    }
