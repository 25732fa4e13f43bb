"""What a training job is asked to do, and how that maps onto `convscope train`'s settings."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.training.finetune import FinetuneConfig
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

    kind = "scratch"

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> dict[str, Any]:
        return self.public()

    def steps_total(self) -> int:
        """Optimizer steps of the whole run, as Run.start counts them for train_config()."""
        config = self.train_config()
        return batches(config.limit, config.batch_size) * config.epochs


@dataclass(frozen=True)
class DataSource:
    """Where the job finds MNIST, and whether it may fetch the missing files there first."""

    directory: Path
    download: bool


@dataclass(frozen=True)
class FinetuneJobConfig:
    """A "teach it" job: a served model's file, the learner's labelled drawings (as the model
    reads them: 28x28 in [0, 1], white ink on black), and the knobs the API lets them turn."""

    base_model: str  # its name where it is served
    base_path: str  # the weights file a worker loads (the same image everywhere)
    base_sha256: str  # checked where the job runs: the model taught is the model served
    examples: np.ndarray = dataclasses.field(compare=False, repr=False)  # (E, 28, 28) float32
    labels: tuple[int, ...] = ()
    steps: int = FinetuneConfig.steps
    learning_rate: float = FinetuneConfig.learning_rate
    seed: int = FinetuneConfig.seed

    kind = "finetune"

    def steps_total(self) -> int:
        return self.steps

    def recipe(self) -> FinetuneConfig:
        return FinetuneConfig(steps=self.steps, learning_rate=self.learning_rate, seed=self.seed)

    def public(self) -> dict[str, Any]:
        """What the status answers: the settings, and how many examples (not the examples)."""
        return {
            "kind": self.kind,
            "base_model": self.base_model,
            "examples": len(self.labels),
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        }

    def to_json(self) -> dict[str, Any]:
        """The job's arguments on a queue: plain JSON, the examples as base64 float32."""
        examples = np.ascontiguousarray(self.examples, dtype="<f4")
        return {
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(self)},
            "kind": self.kind,
            "labels": list(self.labels),
            "examples": {
                "shape": list(examples.shape),
                "data": base64.b64encode(examples.tobytes()).decode("ascii"),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinetuneJobConfig:
        packed = data["examples"]
        raw = np.frombuffer(base64.b64decode(packed["data"]), dtype="<f4")
        fields = {k: v for k, v in data.items() if k not in {"kind", "examples", "labels"}}
        examples = raw.reshape(packed["shape"]).astype(np.float32)
        return cls(**fields, examples=examples, labels=tuple(data["labels"]))


AnyJobConfig = JobConfig | FinetuneJobConfig


def config_from_json(data: dict[str, Any]) -> AnyJobConfig:
    """A job's arguments as a queue carries them, back into its config."""
    if data.get("kind") == "finetune":
        return FinetuneJobConfig.from_json(data)
    return JobConfig(**{k: v for k, v in data.items() if k != "kind"})
