"""The training loop: a network, MNIST (with augmentation and stroke digits), Adam, a cosine
schedule, the best epoch kept; `convscope train` (server/cli/train.py) and the live jobs call it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn import (
    Adam,
    Sequential,
    cosine_lr,
    load_model,
    softmax_cross_entropy,
    uniform_cross_entropy,
)
from server.cnn.architectures import build_preset
from server.cnn.lanes import Lanes
from server.cnn.spec import build_from_spec
from server.training.augment import AugmentConfig, augment
from server.training.evaluation import confusion_matrix, evaluate, predict_logits
from server.training.memory import keep_freed_memory
from server.training.mnist import Mnist


@dataclass(frozen=True)
class TrainConfig:
    """Every training default in one flat block; the file stores it beside the weights."""

    arch: str = "default"  # a preset of server.cnn.architectures, or the --arch-file path
    arch_spec: dict[str, Any] | None = None  # the --arch-file network (layer-spec JSON)
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3  # peak learning rate, after warm-up
    min_lr: float = 1e-5  # end of the cosine schedule
    warmup_epochs: float = 0.5
    weight_decay: float = 1e-4  # decoupled (AdamW)
    dropout: float = 0.4
    validation: int = 5000  # images held out of the 60k to pick the best epoch
    augment: bool = True
    elastic_alpha: float = 34.0  # strongest elastic distortion (Simard et al. 2003); 0: none
    binarize_prob: float = 0.1  # share of images given hard, thresholded edges
    label_smoothing: float = 0.0  # 0.05 cost MNIST accuracy when fine-tuning the shipped model
    strokes: int = 6000  # pen-stroke digits of server.synth added to the training images
    outliers: int = 0  # non-digit drawings (server.synth.nondigits) trained toward no class
    outlier_batch: int = 16  # of them beside each batch of digits
    outlier_weight: float = 0.5  # their loss's weight (Hendrycks et al. 2019 use 0.5)
    seed: int = 0
    init: str = ""  # a weights file of the same architecture to start from ("": random)
    limit: int = 0  # train on the first N training images only (0: all); for quick runs


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


def split(data: Mnist, config: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A seeded random validation split of the training set."""
    order = rng.permutation(len(data.train_images))
    if config.validation >= len(order):
        raise ValueError(
            f"validation holds out {config.validation} of {len(order)} training images, "
            "leaving none to train on; lower --validation"
        )
    val, train = order[: config.validation], order[config.validation :]
    if config.limit:
        train = train[: config.limit]
    return (
        data.train_images[train],
        data.train_labels[train],
        data.train_images[val],
        data.train_labels[val],
    )


def augment_config(config: TrainConfig) -> AugmentConfig:
    return AugmentConfig(elastic_alpha=config.elastic_alpha, binarize_prob=config.binarize_prob)


def with_strokes(
    images: np.ndarray, labels: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's training images plus `config.strokes` pen-stroke digits in styles MNIST lacks.

    At most a tenth of the result, so strokes never outweigh MNIST (a --limit run gets few).
    Drawn with seed config.seed % 100; scripts/robustness_eval.py measures with seed 1000.
    """
    count = min(config.strokes, len(images) // 9)
    if count <= 0:
        return images, labels
    from server.synth import stroke_set

    strokes = stroke_set(count, seed=config.seed % 100, via_png=False)
    pixels = np.rint(strokes.images * 255).astype(images.dtype)  # (S, 28, 28) like MNIST's
    return np.concatenate([images, pixels]), np.concatenate([labels, strokes.labels])


OUTLIER_SEED = 100  # + seed % 100; scripts/digit_score_table.py measures on seed 1's drawings


def outlier_images(config: TrainConfig) -> np.ndarray | None:
    """`config.outliers` non-digit drawings read through the upload path, as uint8 like MNIST's.

    Letters, scribbles, shapes, dots and dashes: outlier exposure teaches the network to read
    them as no digit in particular, which the digit score then sees. None when there are none.
    """
    if config.outliers <= 0:
        return None
    from server.synth.nondigits import nondigits

    drawn = nondigits(config.outliers, seed=OUTLIER_SEED + config.seed % 100)
    return np.rint(np.stack([d.image for d in drawn]) * 255).astype(np.uint8)  # (O, 28, 28)


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step reports: enough for a progress bar or a live chart."""

    step: int  # optimizer steps taken so far, 1-based
    epoch: int  # 1-based
    images: int  # in this batch
    loss: float  # the batch's mean loss
    correct: int  # the batch's correct predictions, in training mode


def new_model(config: TrainConfig) -> Sequential:
    """The network a run starts from: the spec or preset, seeded, and `init`'s weights if any."""
    if config.arch_spec is not None:
        model = build_from_spec(config.arch_spec, seed=config.seed, input_shape=(28, 28, 1))
    else:
        model = build_preset(config.arch, seed=config.seed, dropout=config.dropout)
    if config.init:
        model.load_state_dict(load_model(config.init).model.state_dict(), source=config.init)
    return model


def batches(count: int, batch_size: int) -> int:
    """Optimizer steps in an epoch of `count` images: the last batch may be short."""
    return -(-count // batch_size)


def copy_state(model: Sequential) -> dict[str, np.ndarray]:
    """A copy of the weights and buffers, taken between optimizer steps: later steps leave it."""
    return {key: value.copy() for key, value in model.state_dict().items()}


@dataclass
class Run:
    """A fresh model, its optimizer and the learning-rate schedule over all the run's steps."""

    lanes: Lanes  # runs the model's steps, over this many threads
    optimizer: Adam
    steps_per_epoch: int
    total_steps: int
    warmup: int
    config: TrainConfig
    outliers: np.ndarray | None = None  # (O, 28, 28) uint8 non-digits, or None

    @classmethod
    def start(cls, config: TrainConfig, train_count: int, lanes: int = 1) -> Run:
        """`lanes` threads share each step (server/cnn/lanes.py): a process's cores, where it
        has them to itself."""
        model = new_model(config)
        optimizer = Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps_per_epoch = batches(train_count, config.batch_size)
        warmup = int(config.warmup_epochs * steps_per_epoch)
        return cls(
            Lanes(model, lanes),
            optimizer,
            steps_per_epoch,
            steps_per_epoch * config.epochs,
            warmup,
            config,
            outlier_images(config),
        )

    @property
    def model(self) -> Sequential:
        """The network the lanes train."""
        return self.lanes.model

    def lr_at(self, step: int) -> float:
        config = self.config
        return cosine_lr(config.lr, step, self.total_steps, self.warmup, config.min_lr)

    def epoch_steps(
        self, epoch: int, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> Iterator[StepResult]:
        """One pass over shuffled, augmented batches, one optimizer step each; the caller may
        look at (or copy) the model between steps, where its weights are consistent."""
        config, lanes, optimizer = self.config, self.lanes, self.optimizer
        augmenting = augment_config(config)  # the same for every batch: built once
        order = rng.permutation(len(images))
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            x = images[batch].astype(np.float32) / 255.0  # (B, 28, 28)
            if config.augment:
                x = augment(x, rng, augmenting)
            y = labels[batch].astype(np.int64)
            if self.outliers is not None:
                x = np.concatenate([x, self.outlier_batch(rng, augmenting)])  # (B + O, 28, 28)
            optimizer.lr = self.lr_at(optimizer.steps)
            logits, caches = lanes.forward_train(x[..., None], rng)
            loss, grad_logits = self.loss(logits, y)
            grads = lanes.parameter_gradients(grad_logits, caches)
            optimizer.step(grads)
            correct = int((logits[: len(y)].argmax(axis=1) == y).sum())
            yield StepResult(optimizer.steps, epoch, len(batch), float(loss), correct)

    def outlier_batch(self, rng: np.random.Generator, augmenting: AugmentConfig) -> np.ndarray:
        """`outlier_batch` random non-digits, augmented as the digits are: (O, 28, 28)."""
        assert self.outliers is not None
        picked = self.outliers[rng.integers(len(self.outliers), size=self.config.outlier_batch)]
        x = picked.astype(np.float32) / 255.0
        return augment(x, rng, augmenting) if self.config.augment else x

    def loss(self, logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """The digits' cross-entropy, plus the weighted pull of the outliers (the rows after
        the digits' `len(labels)`) toward uniform; the gradient covers every row."""
        digits = len(labels)
        loss, grad = softmax_cross_entropy(logits[:digits], labels, self.config.label_smoothing)
        if digits == len(logits):
            return loss, grad
        weight = self.config.outlier_weight
        outlier_loss, outlier_grad = uniform_cross_entropy(logits[digits:])
        return loss + weight * outlier_loss, np.concatenate([grad, weight * outlier_grad])


def train_epoch(
    run: Run,
    epoch: int,
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    progress: Any,
) -> tuple[float, float]:
    """One epoch with a progress bar; returns (mean loss, accuracy)."""
    total_loss, correct, seen = 0.0, 0, 0
    started = time.perf_counter()
    for result in run.epoch_steps(epoch, images, labels, rng):
        total_loss += result.loss * result.images
        correct += result.correct
        seen += result.images
        progress.update(result.images)
        progress.set_postfix(
            loss=f"{total_loss / seen:.4f}",
            acc=f"{correct / seen:.4f}",
            img_s=f"{seen / (time.perf_counter() - started):.0f}",
        )
    return total_loss / seen, correct / seen


def train(
    data: Mnist, config: TrainConfig, show_progress: bool = True, lanes: int = 1
) -> tuple[Sequential, dict[str, Any]]:
    """Train, keep the parameters of the best validation epoch, and measure them on the test set;
    `lanes` threads share each step and each evaluation (server/cnn/lanes.py, which runs BLAS
    on one thread beside them)."""
    keep_freed_memory()
    rng = np.random.default_rng(config.seed)
    train_x, train_y, val_x, val_y = split(data, config, rng)
    train_x, train_y = with_strokes(train_x, train_y, config)
    run = Run.start(config, len(train_x), lanes)
    with run.lanes:
        history = run_epochs(run, (train_x, train_y), (val_x, val_y), rng, show_progress)
        best_epoch = max(history, key=lambda r: r.val_accuracy).epoch
        return run.model, file_metadata(run.lanes, data, config, history, best_epoch)


def run_epochs(
    run: Run,
    training: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    show_progress: bool,
) -> list[EpochResult]:
    """Every epoch of the run, each measured on the validation images; the model is left with
    the parameters of the best one."""
    from tqdm import tqdm

    (train_x, train_y), (val_x, val_y) = training, validation
    config, model = run.config, run.model
    history: list[EpochResult] = []
    best_accuracy, best_params = -1.0, {}
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        with tqdm(
            total=len(train_x),
            desc=f"epoch {epoch}/{config.epochs}",
            unit="img",
            disable=not show_progress,
            file=sys.stderr,
        ) as bar:
            train_loss, train_acc = train_epoch(run, epoch, train_x, train_y, rng, bar)
        val_loss, val_acc = evaluate(run.lanes, val_x, val_y) if len(val_x) else (float("nan"), 0.0)
        result = EpochResult(
            epoch,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
            run.optimizer.lr,
            time.perf_counter() - started,
        )
        history.append(result)
        print(
            f"epoch {epoch}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
            f"val loss {val_loss:.4f} acc {val_acc:.4f} | {result.seconds:.0f}s",
            file=sys.stderr,
        )
        if val_acc > best_accuracy:
            best_accuracy = val_acc
            best_params = copy_state(model)
    model.load_state_dict(best_params, source="best epoch")
    return history


def file_metadata(
    model: Sequential | Lanes,
    data: Mnist,
    config: TrainConfig,
    history: list[EpochResult],
    best_epoch: int,
    batch_size: int = 1000,
) -> dict[str, Any]:
    """What a weights file stores beside the weights: the test set's accuracy and confusion
    matrix (measured here, `batch_size` images a pass), the epochs, the settings, the data."""
    predictions = predict_logits(model, data.test_images, batch_size).argmax(axis=1)
    return {
        "test_accuracy": float((predictions == data.test_labels).mean()),
        "best_epoch": best_epoch,
        "epochs": [dataclasses.asdict(r) for r in history],
        "confusion_matrix": confusion_matrix(data.test_labels, predictions).tolist(),
        "config": dataclasses.asdict(config),
        "data_checksums_md5": data.checksums,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "numpy": np.__version__,
    }
