"""Request and response models of /api/v1/trainings (its routes: routes/trainings.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, field_validator

from server.cnn.architectures import PRESETS
from server.training.jobs.job import Status
from server.training.jobs.request import MNIST_TRAIN_IMAGES, JobConfig

DEFAULTS = JobConfig()


def not_a_bool(value: Any) -> Any:
    """pydantic takes true and false for numbers; the schema says a number, and so does this."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


NotBool = BeforeValidator(not_a_bool)


class TrainingRequest(BaseModel):
    """Every field optional; the defaults train the shipped architecture for one epoch."""

    model_config = ConfigDict(extra="forbid")

    architecture: str = Field(
        default=DEFAULTS.architecture,
        description="a preset of convscope train",
        json_schema_extra={"enum": list[JsonValue](sorted(PRESETS))},  # known_architecture checks
    )
    train_size: Annotated[int, NotBool] = Field(
        default=MNIST_TRAIN_IMAGES,
        ge=1000,
        le=MNIST_TRAIN_IMAGES,
        description="MNIST training images to use (1,000 more are held out to evaluate, so at "
        "most 59,000 are trained on)",
    )
    epochs: Annotated[int, NotBool] = Field(default=DEFAULTS.epochs, ge=1, le=5)
    batch_size: Annotated[int, NotBool] = Field(default=DEFAULTS.batch_size, ge=16, le=512)
    learning_rate: Annotated[float, NotBool] = Field(
        default=DEFAULTS.learning_rate,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="peak learning rate (Adam), after a half-epoch warm-up; cosine decay after",
    )
    augment: bool = Field(
        default=DEFAULTS.augment, strict=True, description="random shifts, rotations, ..."
    )
    seed: Annotated[int, NotBool] = Field(default=DEFAULTS.seed, ge=0, le=2**32 - 1)

    @field_validator("architecture")
    @classmethod
    def known_architecture(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"unknown architecture {value!r}; presets are {sorted(PRESETS)}")
        return value

    def job_config(self) -> JobConfig:
        return JobConfig(**self.model_dump())


class TrainingCreated(BaseModel):
    id: str
    status: Literal["queued", "running"]
    queue_position: int = Field(ge=0, description="1: next to start; 0: running")
    events: str = Field(description="the job's event stream: /api/v1/trainings/{id}/events")


class TrainingStatus(BaseModel):
    """Where a job is; loss and accuracy are the latest progress event's."""

    id: str
    status: Status
    queue_position: int = Field(ge=0, description="while queued, 1 = next to start; else 0")
    step: int
    steps_total: int
    epoch: int
    loss: float | None
    accuracy: float | None = Field(description="training accuracy over the latest steps")
    val_accuracy: float | None = Field(description="on the 1,000 held-out images, latest")
    img_per_s: float
    config: TrainingRequest
    error: str | None = Field(description="why it failed, in words")


class SnapshotInfo(BaseModel):
    step: int
    val_accuracy: float


class SnapshotList(BaseModel):
    """Steps whose weights `model: "training:<id>@<step>"` predicts with, oldest first."""

    id: str
    snapshots: list[SnapshotInfo]
