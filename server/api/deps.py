"""Dependencies handed to routes: the models, the settings and the compute threads.

Lookups are `async def` though they never await: FastAPI runs a plain `def` dependency in the
thread pool, a hop that cost more CPU than the lookup itself (two per /predict request). Only
get_model, which may build a model, is a plain `def`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Query, Request

from server.api.models import ModelRegistry
from server.config import Settings
from server.inference import Predictor

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


T = TypeVar("T")


class Compute:
    """Runs model work on a worker thread, at most `threads` at once per process.

    FastAPI's own pool lets 40 sync requests run together; on 2 cores, 16 predictions at once
    cost 5.5-5.9 ms of CPU each (a third of it the kernel, threads trading the GIL) against
    3.0 ms two at a time, which answered 1.85x the requests a second (scripts/asgi_cpu.py); under
    wrk, one at a time beat two (351 against 319-334 requests/s).
    """

    def __init__(self, threads: int) -> None:
        self.limiter = anyio.CapacityLimiter(threads)

    async def run(self, work: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(work, *args, limiter=self.limiter)


async def get_compute(request: Request) -> Compute:
    compute: Compute = request.app.state.compute
    return compute


ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
ModelQueryDep = Annotated[Predictor, Depends(get_model)]
ComputeDep = Annotated[Compute, Depends(get_compute)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
