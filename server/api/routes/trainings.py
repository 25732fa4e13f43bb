"""Live training jobs: start one, follow it as server-sent events, stop it, and
download what it learnt. The jobs themselves live in server.training; this only relays."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from server.api.encoding import ORJSON_OPTIONS, ORJSONResponse, encode_array
from server.api.schemas.common import ErrorResponse
from server.api.schemas.trainings import (
    SnapshotList,
    TrainingCreated,
    TrainingRequest,
    TrainingStatus,
)
from server.cnn import save_model
from server.training.jobs.job import Job, JobEvent
from server.training.jobs.manager import TrainingError, Trainings

router = APIRouter(prefix="/api/v1/trainings", tags=["trainings"])

POLL_S = 0.05  # how often a stream looks for new events: far below the 0.5 s between them
REPEAT_AFTER_S = 0.4  # while the job evaluates or loads data, say where it is again
ENDINGS = frozenset({"done", "cancelled", "failed"})
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no such job in this server process"}
}


async def get_trainings(request: Request) -> Trainings:
    trainings: Trainings = request.app.state.trainings
    return trainings


TrainingsDep = Annotated[Trainings, Depends(get_trainings)]


async def get_job(job_id: str, trainings: TrainingsDep) -> Job:
    """The job, or 404 at once (before any stream starts) when this process does not know it."""
    try:
        return trainings.get(job_id)
    except KeyError as error:
        raise HTTPException(404, str(error.args[0])) from None


JobDep = Annotated[Job, Depends(get_job)]


@router.post(
    "",
    status_code=201,
    response_model=TrainingCreated,
    responses={
        403: {"model": ErrorResponse, "description": "training is switched off on this server"},
        422: {"model": ErrorResponse, "description": "a bad field"},
        429: {"model": ErrorResponse, "description": "the most jobs this server runs already run"},
        503: {"model": ErrorResponse, "description": "MNIST is missing and cannot be downloaded"},
    },
)
def start_training(
    trainings: TrainingsDep, body: Annotated[TrainingRequest | None, Body()] = None
) -> ORJSONResponse:
    """Start a job in a process of its own; follow it at `events`."""
    request = body or TrainingRequest()
    try:
        job = trainings.start(request.job_config())
    except TrainingError as error:
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
        raise HTTPException(error.status, error.detail, headers=headers) from None
    events = f"/api/v1/trainings/{job.id}/events"
    return ORJSONResponse({"id": job.id, "status": "running", "events": events}, status_code=201)


def status_body(job: Job) -> dict[str, Any]:
    body = job.status_data()
    body["config"] = dataclasses.asdict(body["config"])
    return body


@router.get("/{job_id}", response_model=TrainingStatus, responses=UNKNOWN)
def training_status(job: JobDep) -> ORJSONResponse:
    """Where the job is: status, step, latest loss and accuracies, its settings."""
    return ORJSONResponse(status_body(job))


@router.delete("/{job_id}", response_model=TrainingStatus, responses=UNKNOWN)
def cancel_training(job: JobDep) -> ORJSONResponse:
    """Stop the job (within 1 s); a finished job stays as it is. Answers the status after."""
    job.stop()
    return ORJSONResponse(status_body(job))


def event_data(event: JobEvent) -> str:
    """The event's JSON, kernels as base64 float32 ({dtype, shape, data})."""
    data = event.data
    if "kernels" in data:
        kernels = {name: encode_array(k, "base64", "<f4") for name, k in data["kernels"].items()}
        data = {**data, "kernels": kernels}
    return orjson.dumps(data, option=ORJSON_OPTIONS).decode()


def last_event_id(value: str | None) -> int:
    """The id a reconnecting client saw last; anything but a number starts from the beginning."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


EVENTS_DOC = (
    "`progress` (at least every 0.5 s while running), `evaluation` (at least 4 an epoch), then "
    "one of `done`, `cancelled` or `failed`, after which the stream ends. Each event has an "
    "`id`; reconnect with `Last-Event-ID` to get only the later ones."
)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses=UNKNOWN,
    description=EVENTS_DOC,
)
async def training_events(
    job: JobDep, last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None
) -> AsyncIterator[ServerSentEvent]:
    """The job's events as they come, from the first one (or after `Last-Event-ID`)."""
    after = last_event_id(last_event_id_header)
    latest_progress: JobEvent | None = None
    quiet_since = time.monotonic()
    while True:
        for event in job.events_after(after):
            yield sse(event)
            after, quiet_since = event.id, time.monotonic()
            if event.name == "progress":
                latest_progress = event
            if event.name in ENDINGS:
                return
        if job.status != "running" and not job.events_after(after):
            return  # resumed after the end: nothing more will come
        if time.monotonic() - quiet_since >= REPEAT_AFTER_S:
            # at least 2 events a second, even while the job is busy between steps: the latest
            # progress again, under the id of the last event sent (all a resume needs to know)
            repeat = latest_progress or job.latest_progress()
            if repeat is not None:
                yield sse(dataclasses.replace(repeat, id=after))
            quiet_since = time.monotonic()
        await anyio.sleep(POLL_S)


def sse(event: JobEvent) -> ServerSentEvent:
    return ServerSentEvent(raw_data=event_data(event), event=event.name, id=str(event.id))


@router.get("/{job_id}/snapshots", response_model=SnapshotList, responses=UNKNOWN)
def training_snapshots(job: JobDep) -> ORJSONResponse:
    """The steps whose weights were kept, with the validation accuracy at each."""
    snapshots = [{"step": s, "val_accuracy": a} for s, a in job.snapshot_list()]
    return ORJSONResponse({"id": job.id, "snapshots": snapshots})


@router.get(
    "/{job_id}/weights",
    response_class=Response,
    responses={
        **UNKNOWN,
        200: {"content": {"application/octet-stream": {}}, "description": "the .npz file"},
        409: {"model": ErrorResponse, "description": "the job has not finished"},
    },
)
def training_weights(job: JobDep) -> Response:
    """The finished model as a weights file (`convscope serve --weights`, `convscope evaluate`)."""
    try:
        model, metadata = job.weights()
    except ValueError as error:
        raise HTTPException(409, str(error)) from None
    with tempfile.TemporaryDirectory(prefix="convscope-weights-") as directory:
        path = Path(directory) / "weights.npz"
        save_model(path, model, metadata)
        content = path.read_bytes()
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="training-{job.id}.npz"'},
    )
