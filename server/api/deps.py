"""Dependencies handed to routes: the models, the settings and the compute threads.

Lookups are `async def` though they never await: FastAPI runs a plain `def` dependency in the
thread pool, a hop that cost more CPU than the lookup itself (two per /predict request). Only
get_model, which may build a model, is a plain `def`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, TypeVar

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
    """Runs model work on worker threads, at most `threads` at once per process.

    FastAPI's own pool lets 40 sync requests run together; on 2 cores, 16 predictions at once
    cost 5.5-5.9 ms of CPU each (a third of it the kernel, threads trading the GIL) against
    3.0 ms two at a time, which answered 1.85x the requests a second (scripts/asgi_cpu.py); under
    wrk, one at a time beats two (509-530 against 349-362 requests/s). Waiting work queues in the
    executor, not on the event loop: the worker starts the next job the moment it ends one, while
    the loop sends that answer. With an anyio limiter instead, the next job waited for the loop
    to hand it over: 434-493 requests/s, same run.
    """

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="compute")

    async def run(self, work: Callable[..., T], *args: object) -> T:
        context = contextvars.copy_context()  # the request id for logs, as anyio carried it
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(context.run, work, *args))

    def close(self) -> None:
        """Drop queued work and let the threads end once their current job is done."""
        self.executor.shutdown(wait=False, cancel_futures=True)


async def get_compute(request: Request) -> Compute:
    compute: Compute = request.app.state.compute
    return compute


ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
ModelQueryDep = Annotated[Predictor, Depends(get_model)]
ComputeDep = Annotated[Compute, Depends(get_compute)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
