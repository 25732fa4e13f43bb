"""Predictions: one image with its activations, masks and saliency, or a batch of labels.
The routes only hand the request to Compute; the work is in server/api/compute/work.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from server.api.compute.work import answer_batch, answer_predict, answer_predict_file
from server.api.deps import ComputeDep
from server.api.schemas.common import INPUT_ERRORS, error
from server.api.schemas.predict import (
    BatchRequest,
    BatchResponse,
    PredictOptions,
    PredictRequest,
    PredictResponse,
)

router = APIRouter(prefix="/api/v1", tags=["predict"])

PREDICT_ERRORS = {
    **INPUT_ERRORS,
    503: error(
        "`neighbors` asked of a model without an atlas, or more requests in progress than the "
        "server takes at once"
    ),
}


@router.post("/predict", response_model=PredictResponse, responses=PREDICT_ERRORS)
async def predict(request: PredictRequest, compute: ComputeDep) -> Response:
    """Classify one image (`image`, preprocessed like MNIST) or raw `pixels` (used as they are)."""
    return await compute.run(answer_predict, request, model=request.model, heavy=occludes(request))


@router.post("/predict/file", response_model=PredictResponse, responses=PREDICT_ERRORS)
async def predict_file(
    file: Annotated[UploadFile, File(description="an image file: PNG, JPEG, WebP, BMP or GIF")],
    options: Annotated[PredictOptions, Query()],
    compute: ComputeDep,
    edits: Annotated[str | None, Form(description="JSON of /predict's `edits` object")] = None,
) -> Response:
    """The same as /predict for a multipart upload: `curl -F file=@digit.png .../predict/file`."""
    data = await file.read()
    return await compute.run(
        answer_predict_file, data, options, edits, model=options.model, heavy=occludes(options)
    )


@router.post("/predict/batch", response_model=BatchResponse, responses=INPUT_ERRORS)
async def predict_batch(request: BatchRequest, compute: ComputeDep) -> Response:
    """Labels and probabilities for up to 256 images or pixel grids, in one forward pass."""
    return await compute.run(answer_batch, request, model=request.model)


def occludes(options: PredictOptions) -> bool:
    """An occlusion map is a hundred forward passes: it takes the heavy lane (HeavyLane)."""
    return options.saliency and options.saliency_method == "occlusion"
