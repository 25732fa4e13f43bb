"""What a training job is asked to do, and how that maps onto `convscope train`'s settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from server.training.train import TrainConfig, batches

VALIDATION_IMAGES = 1000  # held out of MNIST's 60,000 training images for the evaluations
MNIST_TRAIN_IMAGES = 60_000


@dataclass(frozen=True)
class JobConfig:
    """The knobs a person turns from the page; everything else is `convscope train`'s default."""

    architecture: str = TrainConfig.arch
    train_size: int = MNIST_TRAIN_IMAGES  # capped at 59,000: 1,000 are held out to evaluate
    epochs: int = 1
    batch_size: int = TrainConfig.batch_size
    learning_rate: float = TrainConfig.lr
    augment: bool = False
    seed: int = TrainConfig.seed

    def train_config(self) -> TrainConfig:
        """The same run `convscope train` would make with these settings."""
        return dataclasses.replace(
            TrainConfig(),
            arch=self.architecture,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.learning_rate,
            augment=self.augment,
            seed=self.seed,
            validation=VALIDATION_IMAGES,
            limit=min(self.train_size, MNIST_TRAIN_IMAGES - VALIDATION_IMAGES),
        )

    def steps_total(self) -> int:
        """Optimizer steps of the whole run, as Run.start counts them for train_config()."""
        config = self.train_config()
        return batches(config.limit, config.batch_size) * config.epochs


@dataclass(frozen=True)
class DataSource:
    """Where the job finds MNIST, and whether it may fetch the missing files there first."""

    directory: Path
    download: bool
