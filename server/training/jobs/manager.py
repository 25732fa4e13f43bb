"""Every job of this server process: start (within the limit), look up, cancel, forget."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from server.inference import Predictor
from server.training.jobs.job import Job, MakePredictor
from server.training.jobs.request import DataSource, JobConfig
from server.training.mnist import FILES, MnistError, download_mnist, find_file


class TrainingError(Exception):
    """A job that cannot start; `status` is the HTTP answer the API gives, `detail` says why."""

    def __init__(self, status: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


def mnist_present(directory: Path) -> bool:
    """All four MNIST files are there, raw or gzipped, as load_mnist looks for them."""
    try:
        for name in FILES:
            find_file(directory, name)
    except MnistError:
        return False
    return True


class Trainings:
    """The jobs this process started; finished ones are forgotten `ttl_s` after they end."""

    def __init__(
        self,
        source: DataSource,
        *,
        enabled: bool = True,
        max_running: int = 1,
        ttl_s: float = 3600.0,
        make_predictor: MakePredictor = Predictor,
    ) -> None:
        self.source = source
        self.enabled = enabled
        self.max_running = max_running
        self.ttl_s = ttl_s
        self.make_predictor = make_predictor
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.download_lock = threading.Lock()
        self.closed = False

    def running(self) -> list[Job]:
        return [job for job in self.jobs.values() if job.status == "running"]

    def start(self, config: JobConfig) -> Job:
        """A new job, or TrainingError (403 disabled, 429 busy, 503 no data)."""
        if not self.enabled:
            raise TrainingError(
                403, "training is switched off on this server (CONVSCOPE_TRAINING=false)"
            )
        self._ensure_mnist()
        with self.lock:
            self._forget_expired()
            if self.closed:
                raise TrainingError(503, "the server is shutting down", retry_after_s=5)
            if len(self.running()) >= self.max_running:
                raise TrainingError(
                    429,
                    f"{self.max_running} training job(s) already running, the most this server "
                    "takes at once; try again when one ends",
                    retry_after_s=10,
                )
            job = Job(config, self.source.directory, self._finished, self.make_predictor)
            self.jobs[job.id] = job
        return job

    def _ensure_mnist(self) -> None:
        """MNIST in the source directory, fetched once if allowed; TrainingError 503 saying how to
        provide it when it is missing and cannot be downloaded (a job would only fail later)."""
        directory = self.source.directory
        if mnist_present(directory):
            return
        how = f"put the four IDX files in {directory}, or point CONVSCOPE_MNIST_DIR at them"
        if not self.source.download:
            raise TrainingError(
                503,
                f"MNIST is not in {directory} and downloading is switched off "
                f"(CONVSCOPE_MNIST_DOWNLOAD=false): {how}, or allow the download",
            )
        with self.download_lock:  # one download, however many requests arrive meanwhile
            try:
                download_mnist(directory, show_progress=False)
            except (MnistError, OSError) as error:
                raise TrainingError(
                    503, f"MNIST is not in {directory} and could not be downloaded ({error}): {how}"
                ) from None

    def get(self, job_id: str) -> Job:
        """The job, or KeyError saying it is unknown here (maybe another server process's)."""
        with self.lock:
            self._forget_expired()
            job = self.jobs.get(job_id)
        if job is None:
            raise KeyError(
                f"no training {job_id!r} in this server process; it may have ended more than "
                f"{self.ttl_s:g} s ago, or been started by another worker or replica"
            )
        return job

    def predictor(self, name: str) -> Predictor:
        """What "training:<name>" predicts with: "<id>" the latest weights, "<id>@<step>" the
        snapshot nearest that step; KeyError (with a message) when neither makes sense."""
        job_id, at, step_text = name.partition("@")
        step = None
        if at:
            try:
                step = int(step_text)
            except ValueError:
                raise KeyError(
                    f"training:{name}: the step after '@' must be a whole number, not {step_text!r}"
                ) from None
        return self.get(job_id).predictor(step)

    def _finished(self, job: Job) -> None:
        """Called from a job's reader thread once its process has gone: free it after ttl_s."""
        timer = threading.Timer(self.ttl_s + 0.01, self._forget_expired_now)
        timer.daemon = True
        timer.start()

    def _forget_expired_now(self) -> None:
        with self.lock:
            self._forget_expired()

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self.jobs.items()):
            if job.finished_at is not None and now - job.finished_at >= self.ttl_s:
                del self.jobs[job_id]

    def close(self) -> None:
        """Stop every running job (server shutdown); none is left behind."""
        with self.lock:
            self.closed = True
            jobs = list(self.jobs.values())
        for job in jobs:
            job.stop()
