"""What a compute process (or a compute or heavy-lane thread) runs for the predict and
counterfactual routes: the model work and the answer's body, as module-level functions so the
process can be handed them by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import HTTPException

from server import preprocess
from server.api.atlas_bodies import neighbors_body, require_atlas
from server.api.encoding import ORJSONResponse, encode_map, encode_mask
from server.api.errors import InputError
from server.api.inputs import (
    Clock,
    digit_from_base64,
    edits_from_form,
    image_from_bytes,
    image_or_pixels,
)
from server.api.registry import ModelRegistry
from server.api.schemas.counterfactual import CounterfactualRequest
from server.api.schemas.predict import (
    BatchRequest,
    PredictOptions,
    PredictRequest,
)
from server.config import Settings
from server.explain.counterfactual import (
    CounterfactualOptions,
    TargetIsCurrentLabelError,
    counterfactual,
    load_class_means,
)
from server.explain.edits import Edits
from server.explain.steps import Step, pixels_step, preprocessing_steps
from server.inference import Explanation, Predictor


def explanation_body(
    explained: Explanation,
    image: np.ndarray,
    options: PredictOptions,
    predictor: Predictor,
    clock: Clock,
    steps: list[Step] | None = None,
) -> dict[str, Any]:
    """The response, arrays encoded as asked; layers/saliency only when asked."""
    body: dict[str, Any] = {
        "label": explained.label,
        "probabilities": explained.probabilities.astype(np.float64).tolist(),
        "input": encode_map(image, options.encoding),
        "model": predictor.sha256[:12],
        "digit_score": explained.digit_score,
        "is_digit": explained.is_digit,
    }
    if explained.layers is not None:
        body["layers"] = [
            {
                "name": layer.name,
                "kind": layer.kind,
                "shape": list(layer.data.shape),
                "data": encode_map(layer.data, options.encoding),
                **(
                    {}
                    if layer.mask is None
                    else {"mask": encode_mask(layer.mask, options.encoding)}
                ),
            }
            for layer in explained.layers
        ]
    if explained.saliency is not None:
        body["saliency"] = encode_map(explained.saliency, options.encoding)
        body["target"] = explained.target
    if explained.baseline is not None:
        body["baseline"] = {
            "label": int(explained.baseline.argmax()),
            "probabilities": explained.baseline.astype(np.float64).tolist(),
        }
    if explained.neighbors is not None:
        assert predictor.atlas is not None, "neighbours come from the atlas"
        body.update(neighbors_body(predictor.atlas, explained.neighbors, options.encoding))
    if steps is not None:
        body["steps"] = [
            {"name": s.name, "note": s.note, "image": encode_map(s.image, options.encoding)}
            for s in steps
        ]
    body["timings_ms"] = clock.report()
    return body


def predict_one(
    image: np.ndarray,
    options: PredictOptions,
    predictor: Predictor,
    clock: Clock,
    edits: Edits | None = None,
    steps: list[Step] | None = None,
    name: str = "",
) -> ORJSONResponse:
    if options.neighbors:
        require_atlas(predictor, name)
    explained = predictor.explain(
        image,
        activations=options.activations,
        saliency=options.saliency,
        target=options.target,
        saliency_method=options.saliency_method,
        edits=edits,
        neighbors=options.neighbors,
    )
    clock.lap("forward")
    return ORJSONResponse(explanation_body(explained, image, options, predictor, clock, steps))


def answer_predict(
    request: PredictRequest, models: ModelRegistry, settings: Settings
) -> ORJSONResponse:
    """/predict's work, in the compute process or on a compute thread (a training job's weights
    are built into a model there too, not on the event loop)."""
    predictor = models.get(request.model)
    clock = Clock()
    image, gray = image_or_pixels(request.image, request.pixels, settings, clock)
    steps = None
    if request.steps and gray is not None:  # from the same decoded image, one stage at a time
        steps = preprocessing_steps(preprocess.as_unit(gray))
    elif request.steps:
        steps = pixels_step(image)
    edits = None if request.edits is None else request.edits.to_edits()
    name = request.model or models.default
    return predict_one(image, request, predictor, clock, edits, steps, name)


def answer_predict_file(
    data: bytes,
    options: PredictOptions,
    edits: str | None,
    models: ModelRegistry,
    settings: Settings,
) -> ORJSONResponse:
    """/predict/file's work, where /predict's runs."""
    predictor = models.get(options.model)
    clock = Clock()
    parsed = None if edits is None else edits_from_form(edits)
    image = image_from_bytes(data, settings, clock)
    name = options.model or models.default
    return predict_one(image, options, predictor, clock, parsed, name=name)


def answer_batch(
    request: BatchRequest, models: ModelRegistry, settings: Settings
) -> ORJSONResponse:
    """/predict/batch's work, where /predict's runs."""
    predictor = models.get(request.model)
    items = request.images if request.images is not None else request.pixels
    assert items is not None  # the schema guarantees one of the two
    if len(items) > settings.max_batch:
        raise InputError(413, f"a batch holds at most {settings.max_batch} items, got {len(items)}")
    if not items:
        return ORJSONResponse(
            {"labels": [], "probabilities": [], "digit_scores": [], "is_digit": []}
        )
    if request.images is not None:
        named = [(text, f"images[{index}]") for index, text in enumerate(request.images)]
        images = [digit_from_base64(text, settings, at, at) for text, at in named]
        batch = np.stack(images)  # (N, 28, 28)
    else:
        batch = np.asarray(request.pixels, dtype=np.float32)  # (N, 28, 28)
    classified = predictor.classify(batch)
    return ORJSONResponse(
        {
            "labels": classified.probabilities.argmax(axis=1).tolist(),
            "probabilities": classified.probabilities.astype(np.float64).tolist(),
            "digit_scores": classified.digit_scores.tolist(),
            "is_digit": classified.is_digit.tolist(),
        }
    )


@cache
def cached_class_means(path: Path) -> np.ndarray:
    """Read once per path; read-only afterwards, so every thread shares it."""
    means = load_class_means(path)
    means.flags.writeable = False
    return means


def class_means(settings: Settings) -> np.ndarray:
    """The mean MNIST image per digit, the pull of counterfactual edits; 503 in words without."""
    try:
        return cached_class_means(settings.class_means)
    except ValueError as error:
        raise HTTPException(
            503,
            f"counterfactuals need the class-means file: {error}; "
            "write it with `python scripts/class_means.py`",
        ) from error


def answer_counterfactual(
    request: CounterfactualRequest, models: ModelRegistry, settings: Settings
) -> ORJSONResponse:
    """Edit the input with pen strokes until the model reads `target`: the edit, both readings."""
    predictor = models.get(request.model)
    means = class_means(settings)
    clock = Clock()
    image, _ = image_or_pixels(request.image, request.pixels, settings, clock)
    options = CounterfactualOptions(
        max_steps=request.max_steps, time_limit=settings.counterfactual_seconds
    )
    try:
        found = counterfactual(predictor.model, image, request.target, means, options)
    except TargetIsCurrentLabelError as error:
        raise InputError(422, str(error)) from None
    clock.lap("search")
    return ORJSONResponse(
        {
            "target": found.target,
            "reached": found.reached,
            "steps": found.steps,
            "pixels": encode_map(found.pixels, request.encoding),
            "delta": encode_map(found.delta, request.encoding),
            "label": found.label,
            "probabilities": found.probabilities.astype(np.float64).tolist(),
            "original": {
                "label": found.original_label,
                "probabilities": found.original_probabilities.astype(np.float64).tolist(),
            },
            "l1": round(found.l1, 4),
            "l2": round(found.l2, 4),
            "timings_ms": clock.report(),
        }
    )
