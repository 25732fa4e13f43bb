"""Training jobs in this server process (the embedded mode, no set-up): at most `max_running`
run at once, each in a process of its own; the rest wait in line, first come first served."""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import anyio

from server.cnn import Sequential
from server.inference import Predictor
from server.training.jobs.backend import (
    TrainingError,
    UnknownJobError,
    WireEvent,
    parse_model_name,
)
from server.training.jobs.job import ACTIVE, Job, MakePredictor
from server.training.jobs.request import AnyJobConfig, DataSource
from server.training.mnist import FILES, MnistError, download_mnist, find_file


def mnist_present(directory: Path) -> bool:
    """All four MNIST files are there, raw or gzipped, as load_mnist looks for them."""
    try:
        for name in FILES:
            find_file(directory, name)
    except MnistError:
        return False
    return True


def ensure_mnist(source: DataSource, lock: threading.Lock) -> None:
    """MNIST in the source directory, fetched once if allowed; TrainingError 503 saying how to
    provide it when it is missing and cannot be downloaded (a job would only fail later)."""
    directory = source.directory
    if mnist_present(directory):
        return
    how = f"put the four IDX files in {directory}, or point CONVSCOPE_MNIST_DIR at them"
    if not source.download:
        raise TrainingError(
            503,
            f"MNIST is not in {directory} and downloading is switched off "
            f"(CONVSCOPE_MNIST_DOWNLOAD=false): {how}, or allow the download",
        )
    with lock:  # one download, however many requests arrive meanwhile
        try:
            download_mnist(directory, show_progress=False)
        except (MnistError, OSError) as error:
            raise TrainingError(
                503, f"MNIST is not in {directory} and could not be downloaded ({error}): {how}"
            ) from None


def refuse_when_off(enabled: bool) -> None:
    if not enabled:
        raise TrainingError(
            403, "training is switched off on this server (CONVSCOPE_TRAINING=false)"
        )


def queue_full(max_queued: int) -> TrainingError:
    return TrainingError(
        429,
        f"{max_queued} training jobs are already waiting, the most the queue holds; "
        "try again in a minute",
        retry_after_s=30,
    )


def already_training(job_id: str, status: str) -> TrainingError:
    return TrainingError(
        429,
        f"you already have a training job ({job_id}, {status}); stop it or let it finish "
        "before starting another",
        retry_after_s=10,
    )


class LocalTrainings:
    """The jobs this process started; finished ones are forgotten `ttl_s` after they end."""

    def __init__(
        self,
        source: DataSource,
        *,
        enabled: bool = True,
        max_running: int = 1,
        max_queued: int = 100,
        ttl_s: float = 3600.0,
        make_predictor: MakePredictor = Predictor,
    ) -> None:
        self.source = source
        self.enabled = enabled
        self.max_running = max_running
        self.max_queued = max_queued
        self.ttl_s = ttl_s
        self.make_predictor = make_predictor
        self.jobs: dict[str, Job] = {}
        self.waiting: deque[Job] = deque()
        self.owners: dict[str, str] = {}  # client -> its latest job's id
        self.lock = threading.Lock()
        self.download_lock = threading.Lock()
        self.closed = False

    # --- the contract (server.training.jobs.backend.Trainings) -------------------------

    async def start(self, config: AnyJobConfig, client: str) -> dict[str, Any]:
        job = await anyio.to_thread.run_sync(self.start_job, config, client)
        return job.status_data()

    async def status(self, job_id: str) -> dict[str, Any]:
        return self.get(job_id).status_data()

    async def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        await anyio.to_thread.run_sync(job.stop)
        return job.status_data()

    async def events_after(self, job_id: str, after: int) -> list[WireEvent]:
        return [event.wire() for event in self.get(job_id).events_after(after)]

    async def snapshots(self, job_id: str) -> list[tuple[int, float]]:
        return self.get(job_id).snapshot_list()

    async def weights(self, job_id: str) -> tuple[Sequential, dict[str, Any]]:
        return self.get(job_id).weights()

    def predictor(self, name: str) -> Predictor:
        job_id, step = parse_model_name(name)
        return self.get(job_id).predictor(step)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.stop_all)

    # --- the jobs ------------------------------------------------------------------------

    def start_job(self, config: AnyJobConfig, client: str) -> Job:
        """A new job, running or in line; TrainingError (403 off, 429 one's own job or the queue
        full, 503 no data or shutting down)."""
        refuse_when_off(self.enabled)
        ensure_mnist(self.source, self.download_lock)
        with self.lock:
            self._forget_expired()
            if self.closed:
                raise TrainingError(503, "the server is shutting down", retry_after_s=5)
            own = self.jobs.get(self.owners.get(client, ""))
            if own is not None and own.status in ACTIVE:
                raise already_training(own.id, own.status)
            running = sum(job.status == "running" for job in self.jobs.values())
            position = 0
            if running >= self.max_running or self.waiting:
                if len(self.waiting) >= self.max_queued:
                    raise queue_full(self.max_queued)
                position = len(self.waiting) + 1
            job = Job(
                config,
                self.source.directory,
                self._finished,
                self.make_predictor,
                position=position,
            )
            self.jobs[job.id] = job
            self.owners[client] = job.id
            if position:
                self.waiting.append(job)
        return job

    def get(self, job_id: str) -> Job:
        """The job, or UnknownJobError saying it is unknown here (maybe another process's)."""
        with self.lock:
            self._forget_expired()
            job = self.jobs.get(job_id)
        if job is None:
            raise UnknownJobError(
                f"no training {job_id!r} in this server process; it may have ended more than "
                f"{self.ttl_s:g} s ago, or been started by another worker or replica"
            )
        return job

    def _finished(self, job: Job) -> None:
        """Called once a job has ended (its reader thread, or stop() on a queued job): start the
        next in line, tell the others their new places, free the job after ttl_s."""
        with self.lock:
            if job in self.waiting:
                self.waiting.remove(job)
            self._launch_next()
        timer = threading.Timer(self.ttl_s + 0.01, self._forget_expired_now)
        timer.daemon = True
        timer.start()

    def _launch_next(self) -> None:
        """Under the lock: fill free slots from the head of the line, then renumber the line."""
        if self.closed:
            return
        running = sum(job.status == "running" for job in self.jobs.values())
        while self.waiting and running < self.max_running:
            self.waiting.popleft().launch()
            running += 1
        for place, waiting in enumerate(self.waiting, start=1):
            waiting.wait_at(place)

    def _forget_expired_now(self) -> None:
        with self.lock:
            self._forget_expired()

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self.jobs.items()):
            if job.finished_at is not None and now - job.finished_at >= self.ttl_s:
                del self.jobs[job_id]

    def stop_all(self) -> None:
        """Stop every job (server shutdown); none is left behind."""
        with self.lock:
            self.closed = True
            jobs = list(self.jobs.values())
        for job in jobs:
            job.stop()
