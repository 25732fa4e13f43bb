"""Dependencies handed to routes: the models, the settings and where model work runs.

Lookups are `async def` though they never await: FastAPI runs a plain `def` dependency in the
thread pool, a hop that cost more CPU than the lookup itself (two per /predict request). Only
get_model, which may build a model, is a plain `def`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated

from fastapi import Depends, Query, Request, Response

from server.api.compute_process import Answer, ComputeProcess, Work
from server.api.metrics import PassObserver
from server.api.models import ModelRegistry
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


class Compute:
    """Runs a route's model work off the event loop: in the compute process when it holds the
    model asked for, otherwise (a training job's model, or no compute process) on the compute
    threads, at most `threads` at once.

    The process answers 1.5x the predictions a second of a thread under wrk, one worker on two
    CPUs (README, "Speed"): a thread takes turns with the event loop for the GIL, so the two
    together never use more than one core. Threads: FastAPI's own pool lets 40 sync requests run
    together; on 2 cores, 16 predictions at once cost 5.5-5.9 ms of CPU each against 3.0 ms two
    at a time (scripts/asgi_cpu.py), and under wrk one at a time beats two (509-530 against
    349-362 requests/s). Waiting work queues in the executor, not on the event loop: the thread
    starts the next job the moment it ends one, while the loop sends that answer.
    """

    def __init__(
        self,
        threads: int,
        models: ModelRegistry,
        settings: Settings,
        observe: PassObserver,
        process: ComputeProcess | None = None,
    ) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="compute")
        self.models, self.settings, self.observe, self.process = models, settings, observe, process

    async def run(self, work: Work, *args: object, model: str | None) -> Response:
        """work(*args, models, settings) for a request naming `model` (None: the default)."""
        if self.process is not None and self.models.loaded(model):
            return self.response(await self.process.run(work, *args))
        context = contextvars.copy_context()  # the request id for logs, as anyio carried it
        loop = asyncio.get_running_loop()
        job = partial(context.run, work, *args, self.models, self.settings)
        response: Response = await loop.run_in_executor(self.executor, job)
        return response

    def response(self, answer: Answer) -> Response:
        """The compute process's answer as the route's response; its timings to the metrics."""
        for kind, seconds in answer.passes:
            self.observe(kind, seconds)
        if answer.failure is not None:
            logger.error("unhandled error in the compute process:\n%s", answer.failure.rstrip())
        return Response(answer.body, answer.status, media_type=answer.media_type)

    async def close(self) -> None:
        """Drop queued work; the threads end once their current job is done, the process too."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.process is not None:
            await self.process.close()


async def get_compute(request: Request) -> Compute:
    compute: Compute = request.app.state.compute
    return compute


ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
ModelQueryDep = Annotated[Predictor, Depends(get_model)]
ComputeDep = Annotated[Compute, Depends(get_compute)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
