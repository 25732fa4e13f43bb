"""Request and response models of /api/v1/trainings (its routes: routes/trainings.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    field_validator,
)

from server.api.schemas.predict import ImageOrPixels
from server.cnn.architectures import PRESETS
from server.training.finetune import FinetuneConfig
from server.training.jobs.job import Status
from server.training.jobs.request import MNIST_TRAIN_IMAGES, JobConfig

DEFAULTS = JobConfig()
FINETUNE = FinetuneConfig()
MAX_EXAMPLES = 500


def not_a_bool(value: Any) -> Any:
    """pydantic takes true and false for numbers; the schema says a number, and so does this."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


NotBool = BeforeValidator(not_a_bool)


class TrainingRequest(BaseModel):
    """Every field optional; the defaults train the shipped architecture for one epoch."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["scratch"] = Field(
        default="scratch", description="a new network from scratch (the default kind)"
    )
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
        return JobConfig(**self.model_dump(exclude={"kind"}))


class TeachExample(ImageOrPixels):
    """One of the learner's drawings and what it is: `image` or `pixels`, and `label`."""

    label: Annotated[int, NotBool] = Field(ge=0, le=9, description="the digit it is")


class FinetuneRequest(BaseModel):
    """Teach a served model the learner's own handwriting from their labelled drawings."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["finetune"] = Field(description="fine-tune a served model on `examples`")
    base_model: str = Field(
        max_length=200, description="a model of GET /api/v1/models (404 naming them if not)"
    )
    examples: list[TeachExample] = Field(
        min_length=1,
        max_length=MAX_EXAMPLES,
        description="1 to 500 labelled drawings, each preprocessed as predictions are; 422 "
        "naming the index of one with no digit or a bad image",
    )
    steps: Annotated[int, NotBool] = Field(default=FINETUNE.steps, ge=10, le=2000)
    learning_rate: Annotated[float, NotBool] = Field(
        default=FINETUNE.learning_rate, gt=0, le=0.01, allow_inf_nan=False, description="Adam's"
    )
    seed: Annotated[int, NotBool] = Field(default=FINETUNE.seed, ge=0, le=2**32 - 1)


def request_kind(value: Any) -> str:
    """Which request a body is: its `kind`, "scratch" when it names none."""
    kind = value.get("kind", "scratch") if isinstance(value, dict) else getattr(value, "kind", "")
    return kind if kind in ("scratch", "finetune") else "scratch"


TrainingBody = Annotated[
    Annotated[TrainingRequest, Tag("scratch")] | Annotated[FinetuneRequest, Tag("finetune")],
    Discriminator(request_kind),
]


class FinetuneSettings(BaseModel):
    """A "teach it" job's settings as its status tells them (the examples counted, not sent)."""

    kind: Literal["finetune"]
    base_model: str
    examples: int = Field(description="how many labelled drawings it is taught")
    steps: int
    learning_rate: float
    seed: int


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
    config: TrainingRequest | FinetuneSettings = Field(discriminator="kind")
    error: str | None = Field(description="why it failed, in words")


class SnapshotInfo(BaseModel):
    step: int
    val_accuracy: float


class SnapshotList(BaseModel):
    """Steps whose weights `model: "training:<id>@<step>"` predicts with, oldest first."""

    id: str
    snapshots: list[SnapshotInfo]
