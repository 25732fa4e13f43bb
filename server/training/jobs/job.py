"""The parent's side of a job: its process, what it has reported, and its weights over time.

A reader thread per job receives the process's messages and folds them into the job's state
under a lock; request threads and the event loop only read that state (never the pipe), so a
slow client cannot hold up training and a finished job needs nothing from its process.
"""

from __future__ import annotations

import bisect
import copy
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal

from server.cnn import Sequential
from server.cnn.serialize import state_sha256
from server.inference import Predictor
from server.processes import end
from server.training.jobs.backend import WireEvent
from server.training.jobs.events import event_json
from server.training.jobs.messages import (
    Cancelled,
    Done,
    Evaluation,
    Failed,
    Message,
    Progress,
    Snapshot,
    State,
)
from server.training.jobs.request import AnyJobConfig
from server.training.jobs.runner import first_conv_kernels, initial_model, run_job
from server.training.train import copy_state

Status = Literal["queued", "running", "done", "cancelled", "failed"]
ACTIVE: frozenset[str] = frozenset({"queued", "running"})  # a job that still holds its place
MakePredictor = Callable[[Sequential, dict[str, Any], str], Predictor]
STOP_GRACE_S = 0.5  # a job stops by itself at its next step boundary; then it is terminated
CONTEXT = multiprocessing.get_context("spawn")  # never fork a threaded server


@dataclass(frozen=True)
class JobEvent:
    """One server-sent event: its id (1, 2, ... per job), its name and its data."""

    id: int
    name: str  # queued | progress | evaluation | done | cancelled | failed
    data: dict[str, Any]  # arrays stay NumPy
    json: str  # the data as the API sends it (events.event_json), encoded once

    def wire(self) -> WireEvent:
        return WireEvent(self.id, self.name, self.json)


class Job:
    """One training run in its own process."""

    def __init__(
        self,
        config: AnyJobConfig,
        mnist_dir: Path,
        on_finish: Callable[[Job], None] | None = None,
        make_predictor: MakePredictor = Predictor,
        *,
        position: int = 0,
        job_id: str | None = None,
    ) -> None:
        """A job that starts now (`position` 0) or waits at `position` in a queue for launch()."""
        self.id = job_id or uuid.uuid4().hex
        self.config = config
        self.lock = threading.Lock()
        self.status: Status = "running"
        self.error: str | None = None
        self.step, self.epoch = 0, 1
        self.steps_total = config.steps_total()
        self.loss: float | None = None
        self.accuracy: float | None = None
        self.val_accuracy: float | None = None
        self.img_per_s = 0.0
        self.events: list[JobEvent] = []
        self.snapshots: list[tuple[int, float, State]] = []  # (step, val_accuracy, weights)
        self.done: Done | None = None
        self.finished_at: float | None = None  # time.monotonic()
        self._on_finish = on_finish
        self._make_predictor = make_predictor
        self._predictors: dict[int, Predictor] = {}  # by weights step: the latest eight at most

        self.position = 0  # place in the queue while queued (1: next to start), 0 once running
        self._mnist_dir = mnist_dir

        initial = initial_model(config)  # as the process starts, before any data
        self._template = initial  # copied, never run: deepcopy beats from_spec (docs/speed.md)
        self.state: State = copy_state(initial)  # the latest
        self.state_step = 0
        self._cancel = CONTEXT.Event()
        self.process: BaseProcess | None = None
        self._reader: threading.Thread | None = None
        if position:
            self.status = "queued"
            self.wait_at(position)
        else:
            self.launch()

    def wait_at(self, position: int) -> None:
        """Say (as a `queued` event) where the job waits, when that has changed."""
        with self.lock:
            if self.status == "queued" and position != self.position:
                self.position = position
                self._add_event("queued", {"position": position})

    def launch(self) -> None:
        """Start the job's process: the first progress event carries the initial kernels."""
        with self.lock:
            if self.process is not None or self.status not in ACTIVE:
                return
            self.status, self.position = "running", 0
            kernels = first_conv_kernels(self._template)
            progress = Progress(0, self.steps_total, 1, None, None, 0.0, kernels, self.state)
            self._add_event("progress", progress_data(progress))
        self._conn, child_conn = CONTEXT.Pipe(duplex=False)
        self.process = CONTEXT.Process(
            target=run_job,
            args=(self.config, self._mnist_dir, child_conn, self._cancel),
            name=f"convscope-training-{self.id[:8]}",
            daemon=True,  # the server's own exit takes it down too
        )
        self.process.start()
        child_conn.close()  # the child holds the only writer, so its exit reads as EOF here
        self._reader = threading.Thread(
            target=self._read, name=f"training-reader-{self.id[:8]}", daemon=True
        )
        self._reader.start()

    # --- reading the process -----------------------------------------------------------

    def _add_event(self, name: str, data: dict[str, Any]) -> None:
        self.events.append(JobEvent(len(self.events) + 1, name, data, event_json(data)))

    def _read(self) -> None:
        conn: Connection = self._conn
        assert self.process is not None
        try:
            while True:
                try:
                    message: Message = conn.recv()
                except (EOFError, OSError):
                    self._ended_without_word()
                    break
                with self.lock:
                    self._apply(message)
                if isinstance(message, Done | Cancelled | Failed):
                    break
        finally:
            conn.close()
            self.process.join(5)
            if self._on_finish is not None:
                self._on_finish(self)

    def _ended_without_word(self) -> None:
        assert self.process is not None
        self.process.join(1)  # for its exit code
        with self.lock:
            if self.status != "running":
                return
            if self._cancel.is_set():
                self._finish("cancelled", "cancelled", {"step": self.step})
                return
            code = self.process.exitcode
            self.error = f"the training process ended unexpectedly (exit code {code})"
            self._finish("failed", "failed", {"reason": self.error})

    def _finish(self, status: Status, event: str, data: dict[str, Any]) -> None:
        self.status, self.position = status, 0
        self.finished_at = time.monotonic()
        self._add_event(event, data)

    def _apply(self, message: Message) -> None:
        if self.status not in ACTIVE:
            return
        if isinstance(message, Progress):
            self.step, self.epoch = message.step, message.epoch
            self.loss, self.accuracy = message.loss, message.accuracy
            self.img_per_s = message.img_per_s
            self.state, self.state_step = message.state, message.step
            self._add_event("progress", progress_data(message))
        elif isinstance(message, Evaluation):
            self.val_accuracy = message.val_accuracy
            data = {"step": message.step, "val_loss": message.val_loss}
            data["val_accuracy"] = message.val_accuracy
            if message.examples_accuracy is not None:
                data["examples_accuracy"] = message.examples_accuracy
            self._add_event("evaluation", data)
        elif isinstance(message, Snapshot):
            self.snapshots.append((message.step, message.val_accuracy, message.state))
        elif isinstance(message, Done):
            self.done = message
            self.step = message.steps
            self.state, self.state_step = message.state, message.steps
            data = {"test_accuracy": message.test_accuracy, "seconds": message.seconds}
            self._finish("done", "done", {**data, "steps": message.steps, **message.extra})
        elif isinstance(message, Cancelled):
            self._finish("cancelled", "cancelled", {"step": self.step})
        elif isinstance(message, Failed):
            self.error = message.reason
            self._finish("failed", "failed", {"reason": message.reason})

    # --- what the API asks ---------------------------------------------------------------

    def status_data(self) -> dict[str, Any]:
        with self.lock:
            return {
                "id": self.id,
                "status": self.status,
                "queue_position": self.position,
                "step": self.step,
                "steps_total": self.steps_total,
                "epoch": self.epoch,
                "loss": self.loss,
                "accuracy": self.accuracy,
                "val_accuracy": self.val_accuracy,
                "img_per_s": self.img_per_s,
                "config": self.config.public(),
                "error": self.error,
            }

    def events_after(self, last_id: int) -> list[JobEvent]:
        """Events with an id above `last_id` (the list only grows, so a slice is consistent)."""
        return self.events[max(0, last_id) :]

    def latest_progress(self) -> JobEvent | None:
        return next((e for e in reversed(self.events) if e.name == "progress"), None)

    def template_spec(self) -> dict[str, Any]:
        """The job's architecture as a weights file stores it: how to rebuild its models."""
        return self._template.spec()

    def snapshot_list(self) -> list[tuple[int, float]]:
        with self.lock:
            return [(step, accuracy) for step, accuracy, _ in self.snapshots]

    def predictor(self, step: int | None = None) -> Predictor:
        """A Predictor for the latest weights (`step` None) or the snapshot nearest `step`;
        one per weights version, so predictions during training do not rebuild the model."""
        with self.lock:
            if step is None or not self.snapshots:
                key, state = self.state_step, self.state
            else:
                steps = [s for s, _, _ in self.snapshots]
                i = bisect.bisect_left(steps, step)
                near = min(
                    (j for j in (i - 1, i) if 0 <= j < len(steps)),
                    key=lambda j: abs(steps[j] - step),
                )
                key, state = steps[near], self.snapshots[near][2]
            cached = self._predictors.get(key)
            if cached is not None:
                return cached
        model = copy.deepcopy(self._template)  # on a worker thread (get_model), but keep it quick
        model.load_state_dict(state, source=f"training {self.id} step {key}")
        metadata: dict[str, Any] = {"training": self.id, "step": key}
        if self.done is not None and key == self.done.steps:
            metadata = {**self.done.metadata, **metadata}
        predictor = self._make_predictor(model, metadata, state_sha256(state))
        with self.lock:
            if len(self._predictors) >= 8:  # the live weights move on; old versions go
                self._predictors.pop(next(iter(self._predictors)))
            self._predictors[key] = predictor
        return predictor

    def weights(self) -> tuple[Sequential, dict[str, Any]]:
        """The finished model and its metadata; ValueError while it is not done."""
        with self.lock:
            if self.done is None:
                raise ValueError(f"training {self.id} is {self.status}; its weights come when done")
            done = self.done
        model = copy.deepcopy(self._template)
        model.load_state_dict(done.state, source=f"training {self.id}")
        return model, done.metadata

    def stop(self) -> None:
        """A queued job is cancelled at once; a running one is asked to stop at its next step
        boundary, and terminated if it has not within STOP_GRACE_S. Returns once it is gone."""
        self._cancel.set()
        with self.lock:
            if self.process is None:
                if self.status == "queued":
                    self._finish("cancelled", "cancelled", {"step": 0})
                    finished = True
                else:
                    finished = False
            process, reader = self.process, self._reader
        if process is None:
            if finished and self._on_finish is not None:
                self._on_finish(self)
            return
        end(process, STOP_GRACE_S)
        assert reader is not None
        reader.join(2)


def progress_data(message: Progress) -> dict[str, Any]:
    return {
        "step": message.step,
        "steps_total": message.steps_total,
        "epoch": message.epoch,
        "loss": message.loss,
        "accuracy": message.accuracy,
        "img_per_s": message.img_per_s,
        "kernels": message.kernels,
    }
