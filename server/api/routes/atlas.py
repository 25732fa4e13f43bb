"""The atlas of a model (server/atlas/): what each filter looks for, the class inputs, the 2-D
map of the test digits it knows, and the digits behind each cell of its confusion matrix."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query

from server.api.atlas_bodies import atlas_of, digit_body, held_digit, require_atlas, thumbnail
from server.api.deps import ModelName, ModelsDep
from server.api.encoding import ORJSONResponse, PredictEncoding, encode_map
from server.api.schemas.atlas import (
    ChannelResponse,
    ClassesResponse,
    ConfusionResponse,
    DigitOut,
    EmbeddingResponse,
)
from server.api.schemas.common import error
from server.atlas.geometry import conv_groups, group_of

router = APIRouter(prefix="/api/v1/model", tags=["atlas"])

CELL_DIGITS = 60  # of a confusion cell's digits, at most this many are sent

NO_ATLAS = error("the model has no atlas (`convscope atlas` writes one)")
ATLAS_ERRORS: dict[int | str, dict[str, Any]] = {404: error("no model of that name"), 503: NO_ATLAS}
EncodingQuery = Annotated[PredictEncoding, Query(description="as /predict's `encoding`")]
Digit = Annotated[int, Path(ge=0, le=9)]


@router.get(
    "/layers/{layer}/channels/{c}",
    response_model=ChannelResponse,
    responses={
        404: error("no model, layer or channel of that name"),
        422: error("a layer that is not a convolution's (or one sharing its channels)"),
        503: NO_ATLAS,
    },
)
def channel(
    layer: Annotated[str, Path(examples=["conv1"])],
    c: Annotated[int, Path(examples=[0])],
    models: ModelsDep,
    model: ModelName = None,
    encoding: EncodingQuery = "list",
) -> ORJSONResponse:
    """The 9 test-image patches that excite channel `c` most, and its ideal input."""
    predictor = models.get(model)
    names = [row.name for row in predictor.architecture()]
    if layer not in names:
        raise HTTPException(404, f"no layer named {layer!r}; layers are {names}")
    groups = conv_groups(predictor.model)
    group = group_of(groups, layer)
    if group is None:
        convolutional = [m for g in groups for m in g.members]
        raise HTTPException(
            422,
            f"layer {layer!r} is not a convolution's, nor does it share one's channels; "
            f"those layers are {convolutional}",
        )
    if not 0 <= c < group.channels:
        raise HTTPException(404, f"layer {layer!r} has channels 0 to {group.channels - 1}, not {c}")
    atlas = require_atlas(predictor, model or models.default)
    channels = atlas.channels[group.conv]
    examples = []
    for index, row, col, value in zip(
        channels.index[c], channels.row[c], channels.col[c], channels.value[c], strict=True
    ):
        position = atlas.position(int(index))
        assert position is not None, "the atlas holds every example digit"
        top, left, bottom, right = channels.field.box(int(row), int(col))
        examples.append(
            {
                **held_digit(atlas, position),
                "row": int(row),
                "col": int(col),
                "value": float(value),
                "patch": encode_map(thumbnail(atlas, position)[top:bottom, left:right], encoding),
                "box": [top, left, bottom, right],
            }
        )
    return ORJSONResponse(
        {
            "layer": layer,
            "map": channels.map,
            "channel": c,
            "examples": examples,
            "ideal": encode_map(channels.ideal[c], encoding),
            "ideal_box": list(channels.ideal_box),
            "ideal_value": float(channels.ideal_value[c]),
        }
    )


@router.get("/classes", response_model=ClassesResponse, responses=ATLAS_ERRORS)
def classes(
    models: ModelsDep, model: ModelName = None, encoding: EncodingQuery = "list"
) -> ORJSONResponse:
    """For each digit, an input optimised to make the model answer it, and its probability."""
    atlas = atlas_of(models, model)
    return ORJSONResponse(
        {
            "classes": [
                {
                    "label": label,
                    "image": encode_map(image, encoding),
                    "probability": float(probability),
                }
                for label, (image, probability) in enumerate(
                    zip(atlas.class_images, atlas.class_probabilities, strict=True)
                )
            ]
        }
    )


@router.get("/embedding", response_model=EmbeddingResponse, responses=ATLAS_ERRORS)
def embedding(models: ModelsDep, model: ModelName = None) -> ORJSONResponse:
    """A 2-D map of the layer before the output, for the test digits the atlas holds."""
    atlas = atlas_of(models, model)
    xy = atlas.xy.astype(np.float64).round(4)
    points = [
        {"x": x, "y": y, "index": index, "label": label, "predicted": predicted}
        for (x, y), index, label, predicted in zip(
            xy.tolist(),
            atlas.index.tolist(),
            atlas.labels.tolist(),
            atlas.predicted.tolist(),
            strict=True,
        )
    ]
    return ORJSONResponse(
        {"layer": atlas.layer, "method": atlas.method, "count": len(points), "points": points}
    )


@router.get(
    "/digits/{index}",
    response_model=DigitOut,
    responses={
        404: error("no model of that name, or a digit the atlas does not hold"),
        503: NO_ATLAS,
    },
)
def digit(
    index: Annotated[int, Path(examples=[0], description="a test digit the atlas holds")],
    models: ModelsDep,
    model: ModelName = None,
    encoding: EncodingQuery = "list",
) -> ORJSONResponse:
    """A test digit the atlas holds: its thumbnail, label and the model's reading."""
    atlas = atlas_of(models, model)
    position = atlas.position(index)
    if position is None:
        raise HTTPException(
            404,
            f"the atlas does not hold test digit {index}; it holds the {len(atlas.index)} "
            "digits GET /api/v1/model/embedding lists",
        )
    return ORJSONResponse(digit_body(atlas, position, encoding))


@router.get(
    "/confusion/{true}/{predicted}",
    response_model=ConfusionResponse,
    responses={**ATLAS_ERRORS, 422: error("a digit outside 0-9")},
)
def confusion(
    true: Digit,
    predicted: Digit,
    models: ModelsDep,
    model: ModelName = None,
    encoding: EncodingQuery = "list",
) -> ORJSONResponse:
    """The test digits labelled `true` that the model reads as `predicted`."""
    atlas = atlas_of(models, model)
    count = int(((atlas.test_labels == true) & (atlas.test_predicted == predicted)).sum())
    held = np.flatnonzero((atlas.labels == true) & (atlas.predicted == predicted))
    confidence = atlas.probabilities[held, predicted]
    held = held[np.argsort(-confidence, kind="stable")][:CELL_DIGITS]
    return ORJSONResponse(
        {
            "true": true,
            "predicted": predicted,
            "count": count,
            "digits": [digit_body(atlas, int(position), encoding) for position in held],
        }
    )
