"""What a job process tells its parent, over a pipe (each message pickled whole)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

State = dict[str, np.ndarray]  # a Sequential.state_dict() copy: parameters and buffers


@dataclass(frozen=True)
class Progress:
    """Training so far; loss and accuracy are means over the steps since the last Progress."""

    step: int
    steps_total: int
    epoch: int
    loss: float | None
    accuracy: float | None
    img_per_s: float
    kernels: dict[str, np.ndarray]  # first conv layer name -> (F, C, kh, kw)
    state: State  # the weights at this step boundary


@dataclass(frozen=True)
class Evaluation:
    """Loss and accuracy on the held-out images at a step boundary."""

    step: int
    val_loss: float
    val_accuracy: float
    examples_accuracy: float | None = None  # a "teach it" job's: on the learner's drawings


@dataclass(frozen=True)
class Snapshot:
    """The weights at one of the log-spaced steps, with their validation accuracy."""

    step: int
    val_accuracy: float
    state: State


@dataclass(frozen=True)
class Done:
    """The finished model, measured on MNIST's 10,000 test images."""

    test_accuracy: float
    seconds: float
    steps: int
    state: State
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # more for the `done` event (JSON)


@dataclass(frozen=True)
class Cancelled:
    """Stopped at a step boundary on the parent's request."""


@dataclass(frozen=True)
class Failed:
    """The job could not go on; `reason` says why in words."""

    reason: str


Message = Progress | Evaluation | Snapshot | Done | Cancelled | Failed
