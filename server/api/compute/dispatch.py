"""Where a route's model work runs: the compute process when it holds the model asked for,
otherwise the compute threads."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from fastapi import HTTPException, Response

from server.api.compute.process import Answer, ComputeProcess, Work
from server.api.prometheus import PassObserver
from server.api.registry import ModelRegistry
from server.config import Settings

logger = logging.getLogger("convscope")

RETRY_HEAVY_S = 5  # a search takes up to counterfactual_seconds (5 s by default)


class Compute:
    """Runs a route's model work off the event loop: in the compute process when it holds the
    model asked for, otherwise (a training job's model, or no compute process) on the compute
    threads, at most `threads` at once.

    The process uses a second core: a thread takes turns with the event loop for the GIL, so
    the two together never use more than one. Threads are few: FastAPI's own pool lets 40 sync
    requests run together, and predictions at once cost each more CPU than one at a time.
    Waiting work queues in the executor, not on the event loop: the thread starts the next job
    the moment it ends one, while the loop sends that answer. The figures, with their commands:
    docs/speed.md ("The second core", "Compute threads").
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
        self.heavy = HeavyLane(settings.heavy_threads, settings.max_heavy_queued)

    async def run(
        self, work: Work, *args: object, model: str | None, heavy: bool = False
    ) -> Response:
        """work(*args, models, settings) for a request naming `model` (None: the default).
        `heavy` work (a search of seconds) goes to a lane of its own: see HeavyLane."""
        if heavy:
            return await self.heavy.run(self.on_thread(work, *args))
        if self.process is not None and self.models.loaded(model):
            return self.response(await self.process.run(work, *args))
        loop = asyncio.get_running_loop()
        response: Response = await loop.run_in_executor(self.executor, self.on_thread(work, *args))
        return response

    def on_thread(self, work: Work, *args: object) -> Callable[[], Response]:
        context = contextvars.copy_context()  # the request id for logs, as anyio carried it
        return partial(context.run, work, *args, self.models, self.settings)

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
        self.heavy.executor.shutdown(wait=False, cancel_futures=True)
        if self.process is not None:
            await self.process.close()


class HeavyLane:
    """Counterfactual searches and occlusion maps (each seconds, or a hundred forward passes) on
    threads of their own, at most `threads` at once and `max_waiting` in line; past that, 503
    with Retry-After at once. So a crowd asking for them never takes the threads predictions
    use, nor a place in the compute process, and the event loop keeps answering (/healthz)."""

    def __init__(self, threads: int, max_waiting: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="heavy")
        self.capacity = threads + max_waiting
        self.in_lane = 0  # running or waiting: one event loop per process, so exact

    async def run(self, job: Callable[[], Response]) -> Response:
        if self.in_lane >= self.capacity:
            raise HTTPException(
                503,
                f"{self.capacity} searches are running or waiting, the most this server takes "
                "at once; try again in a few seconds",
                headers={"Retry-After": str(RETRY_HEAVY_S)},
            )
        self.in_lane += 1
        try:
            response: Response = await asyncio.get_running_loop().run_in_executor(
                self.executor, job
            )
            return response
        finally:
            self.in_lane -= 1
