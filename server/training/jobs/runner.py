"""The body of a job's process: load MNIST, train with server.training.train's loop, report back.

Runs in a process of its own (spawned, never forked from the threaded server), so the server's
request threads and event loop never wait on training. It stops at the next step boundary once
`cancel` is set, and on its own when the parent process goes away.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from server.cnn import Conv2D, LoadedModel, Sequential, load_model
from server.inference import file_sha256
from server.training.evaluation import evaluate, predict_logits
from server.training.finetune import Finetune, blend_towards, filters_moved, weight_changes
from server.training.jobs.messages import (
    Cancelled,
    Done,
    Evaluation,
    Failed,
    Message,
    Progress,
    Snapshot,
)
from server.training.jobs.request import (
    AnyJobConfig,
    FinetuneJobConfig,
    JobConfig,
)
from server.training.jobs.schedule import evaluation_steps, snapshot_steps
from server.training.memory import keep_freed_memory
from server.training.mnist import Mnist, load_mnist
from server.training.train import (
    EpochResult,
    Run,
    StepResult,
    copy_state,
    file_metadata,
    new_model,
    split,
)

FINETUNE_SNAPSHOTS = 8  # a short run: fewer kept weights, and fewer evaluations to wait for
FINETUNE_VALIDATION = 500  # MNIST training images held out of the replay, to evaluate on
PROGRESS_EVERY_S = 0.25  # the API promises a progress event at least every 0.5 s
EVAL_BATCH = 200  # images a pass when evaluating: a 1,000-image batch's conv2 im2col alone is
# 225 MB (1,000 x 14 x 14 x 288 float32), several times a training step's memory
NICENESS = 19  # training yields the CPU to the server's requests on a shared machine
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


class ProgressWindow:
    """Loss, accuracy and images a second since the last progress message."""

    def __init__(self) -> None:
        self.loss, self.correct, self.images, self.eval_s = 0.0, 0, 0, 0.0
        self.since = time.perf_counter()

    def add(self, result: StepResult) -> None:
        self.loss += result.loss * result.images
        self.correct += result.correct
        self.images += result.images

    def due(self, last: bool) -> bool:
        return last or time.perf_counter() - self.since >= PROGRESS_EVERY_S

    def progress(self, step: int, steps_total: int, epoch: int, model: Sequential) -> Progress:
        """The message for this window (the caller starts a fresh one after it)."""
        now = time.perf_counter()
        rate = self.images / max(1e-9, now - self.since - self.eval_s)  # training time only
        message = Progress(
            step,
            steps_total,
            epoch,
            self.loss / self.images,
            self.correct / self.images,
            rate,
            first_conv_kernels(model),
            copy_state(model),
        )
        return message


def finetune_job(config: FinetuneJobConfig, mnist_dir: Path, reporter: Reporter) -> Done:
    """Teach the served model the learner's drawings (server/training/finetune.py), reporting
    as a training job does, and say at the end what changed: MNIST before and after, each
    example's reading before and after, how far each layer and each first filter moved."""
    started = time.perf_counter()
    loaded = load_base(config)
    base = loaded.model
    model = copy.deepcopy(base)
    data = load_mnist(mnist_dir)
    reporter.check()
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data.train_images))
    held, replay = order[:FINETUNE_VALIDATION], order[FINETUNE_VALIDATION:]
    val_x, val_y = data.train_images[held], data.train_labels[held]
    examples, labels = config.examples, np.asarray(config.labels, dtype=np.int64)
    before = predict_logits(base, examples).argmax(axis=1)
    base_test = base_test_accuracy(loaded, data)
    run = Finetune(
        model,
        examples,
        labels,
        data.train_images[replay],
        data.train_labels[replay],
        config.recipe(),
    )
    steps_total = config.steps_total()
    snapshots = set(snapshot_steps(steps_total, FINETUNE_SNAPSHOTS))
    evaluations = snapshots  # each kept weights with its accuracies: the chart's points too
    window = ProgressWindow()
    for result in run.steps(rng):
        reporter.check()
        window.add(result)
        if window.due(result.step == steps_total):
            reporter.send(window.progress(result.step, steps_total, 1, model))
            window = ProgressWindow()
        if result.step in evaluations:
            clock = time.perf_counter()
            val_loss, val_accuracy = evaluate(model, val_x, val_y, EVAL_BATCH)
            taught = float((predict_logits(model, examples).argmax(axis=1) == labels).mean())
            window.eval_s += time.perf_counter() - clock
            reporter.send(Evaluation(result.step, val_loss, val_accuracy, taught))
            if result.step in snapshots:
                reporter.send(Snapshot(result.step, val_accuracy, copy_state(model)))
    reporter.check()
    blend_towards(model, base, run.config.keep_base)
    after = predict_logits(model, examples).argmax(axis=1)
    test_accuracy = evaluate(model, data.test_images.astype(np.float32) / 255.0, data.test_labels)[
        1
    ]
    layer, ranked = filters_moved(base, model)
    extra = {
        "base_test_accuracy": base_test,
        "examples_before": readings(labels, before),
        "examples_after": readings(labels, after),
        "changed": {
            "layers": weight_changes(base.state_dict(), model.state_dict()),
            "filters": {"layer": layer, "ranked": ranked},
        },
    }
    metadata = {
        "test_accuracy": test_accuracy,
        "finetuned_from": {"model": config.base_model, "sha256": config.base_sha256},
        "finetune": config.public(),
        "base_test_accuracy": base_test,
    }
    seconds = time.perf_counter() - started
    return Done(test_accuracy, seconds, steps_total, copy_state(model), metadata, extra)


def base_test_accuracy(base: LoadedModel, data: Mnist) -> float:
    """The served model's MNIST test accuracy: as its file states it (measured on the same
    10,000 images when it was trained), else measured now."""
    stated = base.metadata.get("test_accuracy")
    if isinstance(stated, float):
        return stated
    return evaluate(base.model, data.test_images, data.test_labels)[1]


def readings(labels: np.ndarray, predicted: np.ndarray) -> list[dict[str, int]]:
    return [{"label": int(a), "predicted": int(b)} for a, b in zip(labels, predicted, strict=True)]


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
    window = ProgressWindow()  # img_per_s counts training time only, as convscope train's bar
    for epoch in range(1, train_config.epochs + 1):
        epoch_started = time.perf_counter()
        epoch_loss, epoch_correct, epoch_images = 0.0, 0, 0
        val_loss, val_accuracy = float("nan"), 0.0
        for result in run.epoch_steps(epoch, train_x, train_y, rng):
            reporter.check()
            window.add(result)
            epoch_loss += result.loss * result.images
            epoch_correct += result.correct
            epoch_images += result.images
            if window.due(result.step == steps_total):
                reporter.send(window.progress(result.step, steps_total, epoch, model))
                window = ProgressWindow()
            if result.step in evaluations:
                eval_started = time.perf_counter()
                val_loss, val_accuracy = evaluate(model, val_x, val_y, EVAL_BATCH)
                window.eval_s += time.perf_counter() - eval_started
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


def initial_model(config: AnyJobConfig) -> Sequential:
    """The network a job starts from: a fresh preset, or the served model a "teach it" job
    fine-tunes."""
    if isinstance(config, JobConfig):
        return new_model(config.train_config())
    return load_base(config).model


def load_base(config: FinetuneJobConfig) -> LoadedModel:
    """The served model a "teach it" job fine-tunes, its file checked against the SHA-256 the
    server saw."""
    path = Path(config.base_path)
    if not path.is_file() or file_sha256(path) != config.base_sha256:
        raise ValueError(
            f"the model {config.base_model!r} is not here as the server served it ({path}): "
            "every server and worker must hold the same weights files"
        )
    return load_model(path)


def run_job(config: AnyJobConfig, mnist_dir: Path, conn: Connection, cancel: Event) -> None:
    """The process's entry point; always ends with one Done, Cancelled or Failed message."""
    os.nice(NICENESS)
    keep_freed_memory()
    final: Message
    try:
        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            reporter = Reporter(conn, cancel)
            if isinstance(config, JobConfig):
                final = train_job(config, mnist_dir, reporter)
            else:
                final = finetune_job(config, mnist_dir, reporter)
    except StoppedError:
        final = Cancelled()
    except Exception as error:  # reported to the client in words, not lost in a child's stderr
        final = Failed(f"{type(error).__name__}: {error}")
    with contextlib.suppress(BrokenPipeError, EOFError, OSError):  # the parent may be gone
        conn.send(final)
    conn.close()
