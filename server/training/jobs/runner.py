"""The body of a job's process: load MNIST, train with server.training.train's loop, report back.

Runs in a process of its own (spawned, never forked from the threaded server), so the server's
request threads and event loop never wait on training. It stops at the next step boundary once
`cancel` is set, and on its own when the parent process goes away.
"""

from __future__ import annotations

import contextlib
import os
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from server.cnn import Conv2D, Sequential
from server.training.evaluation import evaluate
from server.training.jobs.messages import (
    Cancelled,
    Done,
    Evaluation,
    Failed,
    Message,
    Progress,
    Snapshot,
)
from server.training.jobs.request import JobConfig
from server.training.jobs.schedule import evaluation_steps, snapshot_steps
from server.training.mnist import load_mnist
from server.training.train import EpochResult, Run, copy_state, file_metadata, split

PROGRESS_EVERY_S = 0.25  # the API promises a progress event at least every 0.5 s
EVAL_BATCH = 200  # images a pass when evaluating: a 1,000-image batch's conv2 im2col alone is
# 225 MB (1,000 x 14 x 14 x 288 float32), several times a training step's memory
NICENESS = 5  # training yields the CPU to the server's requests on a shared machine
BLAS_THREADS = 1  # a second BLAS thread spins against the server for the same core and slows
# the step it was meant to speed up (docs/speed.md, "Training")


class StoppedError(Exception):
    """Cancelled by the parent, or the parent is gone."""


def first_conv_kernels(model: Sequential) -> dict[str, np.ndarray]:
    """{name: (F, C, kh, kw)} for the first conv layer, as the weights route lays kernels out."""
    for layer in model:
        if isinstance(layer, Conv2D):
            return {layer.name: layer.kernels().copy()}
    return {}


class Reporter:
    """Sends messages to the parent and watches for the signals to stop."""

    def __init__(self, conn: Connection, cancel: Event) -> None:
        self.conn = conn
        self.cancel = cancel
        self.parent = os.getppid()

    def check(self) -> None:
        if self.cancel.is_set() or os.getppid() != self.parent:
            raise StoppedError

    def send(self, message: Message) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            raise StoppedError from None  # nobody is listening any more


def train_job(config: JobConfig, mnist_dir: Path, reporter: Reporter) -> Done:
    started = time.perf_counter()
    train_config = config.train_config()
    steps_total = config.steps_total()
    data = load_mnist(mnist_dir)  # there: Trainings.start fetched it or answered 503
    reporter.check()

    rng = np.random.default_rng(train_config.seed)
    train_x, train_y, val_x, val_y = split(data, train_config, rng)
    run = Run.start(train_config, len(train_x))
    assert run.total_steps == steps_total, (run.total_steps, steps_total)
    model = run.model
    snapshots = set(snapshot_steps(steps_total))
    evaluations = set(evaluation_steps(run.steps_per_epoch, train_config.epochs)) | snapshots

    history: list[EpochResult] = []
    last_report = time.perf_counter()
    window_loss, window_correct, window_images = 0.0, 0, 0
    window_eval_s = 0.0  # img_per_s counts training time only, as convscope train's bar does
    for epoch in range(1, train_config.epochs + 1):
        epoch_started = time.perf_counter()
        epoch_loss, epoch_correct, epoch_images = 0.0, 0, 0
        val_loss, val_accuracy = float("nan"), 0.0
        for result in run.epoch_steps(epoch, train_x, train_y, rng):
            reporter.check()
            window_loss += result.loss * result.images
            window_correct += result.correct
            window_images += result.images
            epoch_loss += result.loss * result.images
            epoch_correct += result.correct
            epoch_images += result.images
            now = time.perf_counter()
            if now - last_report >= PROGRESS_EVERY_S or result.step == steps_total:
                reporter.send(
                    Progress(
                        result.step,
                        steps_total,
                        epoch,
                        window_loss / window_images,
                        window_correct / window_images,
                        window_images / max(1e-9, now - last_report - window_eval_s),
                        first_conv_kernels(model),
                        copy_state(model),
                    )
                )
                last_report = now
                window_loss, window_correct, window_images = 0.0, 0, 0
                window_eval_s = 0.0
            if result.step in evaluations:
                eval_started = time.perf_counter()
                val_loss, val_accuracy = evaluate(model, val_x, val_y, EVAL_BATCH)
                window_eval_s += time.perf_counter() - eval_started
                reporter.send(Evaluation(result.step, val_loss, val_accuracy))
                if result.step in snapshots:
                    reporter.send(Snapshot(result.step, val_accuracy, copy_state(model)))
        history.append(
            EpochResult(
                epoch,
                epoch_loss / epoch_images,
                epoch_correct / epoch_images,
                val_loss,
                val_accuracy,
                run.optimizer.lr,
                time.perf_counter() - epoch_started,
            )
        )

    reporter.check()
    # a live job keeps its last weights, not its best epoch's
    metadata = file_metadata(model, data, train_config, history, len(history), EVAL_BATCH)
    seconds = time.perf_counter() - started
    return Done(metadata["test_accuracy"], seconds, steps_total, copy_state(model), metadata)


def run_job(config: JobConfig, mnist_dir: Path, conn: Connection, cancel: Event) -> None:
    """The process's entry point; always ends with one Done, Cancelled or Failed message."""
    os.nice(NICENESS)
    final: Message
    try:
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            final = train_job(config, mnist_dir, Reporter(conn, cancel))
    except StoppedError:
        final = Cancelled()
    except Exception as error:  # reported to the client in words, not lost in a child's stderr
        final = Failed(f"{type(error).__name__}: {error}")
    with contextlib.suppress(BrokenPipeError, EOFError, OSError):  # the parent may be gone
        conn.send(final)
    conn.close()
