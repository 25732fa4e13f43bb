"""What the API asks of training, whichever way jobs run: in this process (local.py) or on a
shared broker's workers (shared.py). One contract, so the routes and their tests serve both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from server.cnn import Sequential
from server.inference import Predictor
from server.training.jobs.request import AnyJobConfig

ENDINGS = frozenset({"done", "cancelled", "failed"})


class TrainingError(Exception):
    """A job that cannot start; `status` is the HTTP answer the API gives, `detail` says why."""

    def __init__(self, status: int, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


class UnknownJobError(KeyError):
    """No job of that id here; the message says why it may be gone."""


@dataclass(frozen=True)
class WireEvent:
    """One server-sent event as it travels: id (1, 2, ... per job), name, JSON data."""

    id: int
    name: str  # queued | progress | evaluation | done | cancelled | failed
    data: str


class Trainings(Protocol):
    """Training jobs: start, look up, follow, stop, and predict with their weights."""

    async def start(self, config: AnyJobConfig, client: str) -> dict[str, Any]:
        """The new job's status (queued or running), or TrainingError."""
        ...

    async def status(self, job_id: str) -> dict[str, Any]:
        """id, status, queue_position, step, steps_total, epoch, loss, accuracies, config, error."""
        ...

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Stop the job (a queued one at once, a running one within 2 s); the status after."""
        ...

    async def events_after(self, job_id: str, after: int) -> list[WireEvent]:
        """The job's events with an id above `after`, oldest first."""
        ...

    async def snapshots(self, job_id: str) -> list[tuple[int, float]]:
        """(step, validation accuracy) of the kept weights, oldest first."""
        ...

    async def weights(self, job_id: str) -> tuple[Sequential, dict[str, Any]]:
        """The finished model and its metadata; ValueError while it is not done."""
        ...

    def predictor(self, name: str) -> Predictor:
        """What "training:<id>[@<step>]" predicts with (blocking: call it off the event loop)."""
        ...

    async def close(self) -> None:
        """Stop what this process runs and let go of connections."""
        ...


def parse_model_name(name: str) -> tuple[str, int | None]:
    """ "<id>" -> (id, None); "<id>@<step>" -> (id, step); KeyError saying what is wrong."""
    job_id, at, step_text = name.partition("@")
    if not at:
        return job_id, None
    try:
        return job_id, int(step_text)
    except ValueError:
        raise KeyError(
            f"training:{name}: the step after '@' must be a whole number, not {step_text!r}"
        ) from None
