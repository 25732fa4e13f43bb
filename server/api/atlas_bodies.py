"""The atlas as the API sends it, for the atlas routes and for predict's neighbours alike."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.api.encoding import PredictEncoding, encode_map
from server.api.errors import InputError
from server.api.registry import ModelRegistry
from server.atlas.neighbors import Neighbors
from server.atlas.store import Atlas
from server.inference import Predictor


def require_atlas(predictor: Predictor, name: str) -> Atlas:
    """The model's atlas; 503 in words for a model without one."""
    if predictor.atlas is None:
        raise InputError(
            503,
            f"model {name!r} has no atlas: `convscope atlas WEIGHTS --data-dir $MNIST_DIR` "
            "writes one for a weights file (`convscope train` does at its end); a training "
            "job's weights have none",
        )
    return predictor.atlas


def atlas_of(models: ModelRegistry, name: str | None) -> Atlas:
    """The atlas of the model a request names (the default for None): 404 or 503 in words."""
    return require_atlas(models.get(name), name or models.default)


def thumbnail(atlas: Atlas, position: int) -> np.ndarray:
    """(28, 28) float32 in [0, 1] of a held digit."""
    return atlas.pixels[position].astype(np.float32) / 255.0


def held_digit(atlas: Atlas, position: int) -> dict[str, int]:
    """What every answer says of a held digit (schemas/atlas.py's HeldDigit)."""
    return {
        "index": int(atlas.index[position]),
        "label": int(atlas.labels[position]),
        "predicted": int(atlas.predicted[position]),
    }


def digit_body(atlas: Atlas, position: int, encoding: PredictEncoding) -> dict[str, Any]:
    return {
        **held_digit(atlas, position),
        "probabilities": atlas.probabilities[position].astype(np.float64).tolist(),
        "thumbnail": encode_map(thumbnail(atlas, position), encoding),
    }


def neighbors_body(atlas: Atlas, near: Neighbors, encoding: PredictEncoding) -> dict[str, Any]:
    """predict's `neighbors` and `embedding`."""
    return {
        "neighbors": [
            {
                **held_digit(atlas, position),
                "distance": float(distance),
                "thumbnail": encode_map(thumbnail(atlas, position), encoding),
            }
            for position, distance in zip(near.positions, near.distances, strict=True)
        ],
        "embedding": {"x": near.x, "y": near.y, "layer": atlas.layer},
    }
