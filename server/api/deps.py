"""Dependencies handed to routes: the models, the settings and where model work runs.

Lookups are `async def` though they never await: FastAPI runs a plain `def` dependency in the
thread pool, a hop that cost more CPU than the lookup itself (two per /predict request). Only
get_model, which may build a model, is a plain `def`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Query, Request

from server.api.compute.dispatch import Compute
from server.api.registry import ModelRegistry
from server.config import Settings
from server.inference import Predictor

logger = logging.getLogger("convscope")

MODEL_NAME_DESCRIPTION = "a model of GET /api/v1/models (or training:<id>); the default if absent"


async def get_models(request: Request) -> ModelRegistry:
    models: ModelRegistry = request.app.state.models
    return models


ModelName = Annotated[str | None, Query(max_length=200, description=MODEL_NAME_DESCRIPTION)]


def get_model(request: Request, model: ModelName = None) -> Predictor:
    """The model a `?model=` query names; 404 (UnknownModelError) for a name nobody answers.
    A plain def, so FastAPI runs it on a worker thread: a training job's weights are built into
    a model here, which the event loop must not wait for."""
    models: ModelRegistry = request.app.state.models
    return models.get(model)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_compute(request: Request) -> Compute:
    compute: Compute = request.app.state.compute
    return compute


ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
ModelQueryDep = Annotated[Predictor, Depends(get_model)]
ComputeDep = Annotated[Compute, Depends(get_compute)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
