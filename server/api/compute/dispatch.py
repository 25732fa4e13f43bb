"""Where a route's model work runs: the compute process when it holds the model asked for,
otherwise the compute threads."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from fastapi import Response

from server.api.compute.process import Answer, ComputeProcess, Work
from server.api.prometheus import PassObserver
from server.api.registry import ModelRegistry
from server.config import Settings

logger = logging.getLogger("convscope")


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
