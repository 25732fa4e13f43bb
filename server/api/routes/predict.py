"""Predictions: one image with its activations, masks and saliency, or a batch of labels."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import ValidationError

from server import preprocess
from server.api.deps import ComputeDep
from server.api.encoding import ORJSONResponse, encode_map, encode_mask
from server.api.errors import InputError, describe_validation
from server.api.models import ModelRegistry
from server.api.schemas import (
    BatchRequest,
    BatchResponse,
    EditsIn,
    ErrorResponse,
    Pixels,
    PredictOptions,
    PredictRequest,
    PredictResponse,
)
from server.config import Settings
from server.explain.edits import Edits
from server.explain.steps import Step, pixels_step, preprocessing_steps
from server.inference import Explanation, Predictor

router = APIRouter(prefix="/api/v1", tags=["predict"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no model of that name"},
    413: {"model": ErrorResponse, "description": "body, image or batch too large"},
    415: {
        "model": ErrorResponse,
        "description": "an image type other than PNG, JPEG, WebP, BMP, GIF",
    },
    422: {"model": ErrorResponse, "description": "bad input, or no digit found in the image"},
}


def decode_base64_image(text: str, field: str = "image") -> bytes:
    """Accept plain base64 or a data URL (data:image/png;base64,...)."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise InputError(
                422, f"{field}: a data URL must be base64-encoded (data:image/png;base64,...)"
            )
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(422, f"{field}: not valid base64") from None


class Clock:
    """Milliseconds per stage of one request."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round((now - self.last) * 1000, 3)
        self.last = now

    def report(self) -> dict[str, float]:
        return {**self.stages, "total": round((time.perf_counter() - self.start) * 1000, 3)}


def image_from_bytes(data: bytes, settings: Settings, clock: Clock | None = None) -> np.ndarray:
    """Upload bytes -> (28, 28) float32 as MNIST draws digits; laps `clock` if given."""
    return digit_from_gray(gray_from_bytes(data, settings, clock), clock)


def image_or_pixels(
    image: str | None, pixels: Pixels | None, settings: Settings, clock: Clock
) -> tuple[np.ndarray, np.ndarray | None]:
    """A request's input: (28, 28) float32 and, for an `image`, its decoded gray (None for
    `pixels`, used as they are). The schemas guarantee exactly one of the two."""
    if image is not None:
        gray = gray_from_bytes(decode_base64_image(image), settings, clock)
        return digit_from_gray(gray, clock), gray
    clock.lap("decode")
    clock.lap("preprocess")
    return np.asarray(pixels, dtype=np.float32), None  # (28, 28)


def gray_from_bytes(data: bytes, settings: Settings, clock: Clock | None = None) -> np.ndarray:
    """Upload bytes -> (H, W) gray: uint8 levels, or float if it must; laps "decode"."""
    gray = preprocess.decode(data, settings.max_image_side)
    if clock:
        clock.lap("decode")
    return gray


def digit_from_gray(gray: np.ndarray, clock: Clock | None = None) -> np.ndarray:
    """Decoded gray -> (28, 28) float32 as MNIST draws digits; laps "preprocess"."""
    digit = preprocess.digit_from_gray(gray)
    if clock:
        clock.lap("preprocess")
    return digit


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
) -> ORJSONResponse:
    explained = predictor.explain(
        image,
        activations=options.activations,
        saliency=options.saliency,
        target=options.target,
        saliency_method=options.saliency_method,
        edits=edits,
    )
    clock.lap("forward")
    return ORJSONResponse(explanation_body(explained, image, options, predictor, clock, steps))


@router.post("/predict", response_model=PredictResponse, responses=ERRORS)
async def predict(request: PredictRequest, compute: ComputeDep) -> Response:
    """Classify one image (`image`, preprocessed like MNIST) or raw `pixels` (used as they are)."""
    return await compute.run(answer_predict, request, model=request.model)


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
    return predict_one(image, request, predictor, clock, edits, steps)


@router.post("/predict/file", response_model=PredictResponse, responses=ERRORS)
async def predict_file(
    file: Annotated[UploadFile, File(description="an image file: PNG, JPEG, WebP, BMP or GIF")],
    options: Annotated[PredictOptions, Query()],
    compute: ComputeDep,
    edits: Annotated[str | None, Form(description="JSON of /predict's `edits` object")] = None,
) -> Response:
    """The same as /predict for a multipart upload: `curl -F file=@digit.png .../predict/file`."""
    data = await file.read()
    return await compute.run(answer_predict_file, data, options, edits, model=options.model)


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
    return predict_one(image, options, predictor, clock, parsed)


def edits_from_form(text: str) -> Edits:
    """The `edits` form field: the same JSON object /predict takes, checked by the same schema."""
    try:
        data = json.loads(text)  # as FastAPI reads a JSON body: NaN and Infinity get through
    except ValueError as error:
        raise InputError(422, f"edits: not valid JSON ({error})") from None
    try:
        return EditsIn.model_validate(data).to_edits()
    except ValidationError as error:
        errors = [{**e, "loc": ("edits", *e["loc"])} for e in error.errors()]
        raise InputError(422, describe_validation(errors)) from None


@router.post("/predict/batch", response_model=BatchResponse, responses=ERRORS)
async def predict_batch(request: BatchRequest, compute: ComputeDep) -> Response:
    """Labels and probabilities for up to 256 images or pixel grids, in one forward pass."""
    return await compute.run(answer_batch, request, model=request.model)


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
        images = []
        for index, text in enumerate(request.images):
            try:
                data = decode_base64_image(text, field=f"images[{index}]")
                images.append(image_from_bytes(data, settings))
            except preprocess.PreprocessError as error:
                raise type(error)(f"images[{index}]: {error}") from error
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
