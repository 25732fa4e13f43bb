"""The model card: architecture, metrics, and any layer's weights."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from server.api.deps import ModelName, ModelQueryDep, ModelsDep
from server.api.encoding import Encoding, ORJSONResponse, encode_array
from server.api.schemas.common import error
from server.api.schemas.model_card import LayerWeightsResponse, ModelResponse

router = APIRouter(prefix="/api/v1/model", tags=["model"])

METRIC_KEYS = ("test_accuracy", "best_epoch", "epochs", "confusion_matrix", "config", "created")


UNKNOWN_MODEL: dict[int | str, dict[str, Any]] = {404: error("no model of that name")}


@router.get("", response_model=ModelResponse, responses=UNKNOWN_MODEL)
def model_card(
    models: ModelsDep,
    model: ModelName = None,
) -> ORJSONResponse:
    """Architecture (shapes [C, H, W]), parameter counts, weights hash and training metrics."""
    predictor = models.get(model)
    layers = [dataclasses.asdict(row) for row in predictor.architecture()]
    h, w, c = predictor.input_shape
    body: dict[str, Any] = {
        "name": model or models.default,
        "input_shape": [c, h, w],
        "layers": layers,
        "total_parameters": sum(row["parameters"] for row in layers),
        "weights_sha256": predictor.sha256,
        "atlas": predictor.atlas is not None,
        "metrics": {k: predictor.metadata[k] for k in METRIC_KEYS if k in predictor.metadata},
    }
    return ORJSONResponse(body)


@router.get(
    "/layers/{name}/weights",
    response_model=LayerWeightsResponse,
    responses={
        404: error("no model or no layer of that name"),
        422: error("unknown encoding"),
    },
)
def layer_weights(
    name: str, predictor: ModelQueryDep, encoding: Annotated[Encoding, Query()] = "list"
) -> ORJSONResponse:
    """Kernels [out, in, kh, kw] and biases of a conv layer; [out, in] for dense; null otherwise."""
    try:
        kind, weight, bias = predictor.layer_weights(name)
    except KeyError:
        known = [row.name for row in predictor.architecture()]
        raise HTTPException(404, f"no layer named {name!r}; layers are {known}") from None
    return ORJSONResponse(
        {
            "name": name,
            "kind": kind,
            "weight": None if weight is None else encode_array(weight, encoding, "<f4"),
            "bias": None if bias is None else encode_array(bias, encoding, "<f4"),
        }
    )
