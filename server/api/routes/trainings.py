"""Live training jobs: start one, follow it as server-sent events, stop it, and
download what it learnt. The jobs themselves live in server.training (in this process, or on a
shared broker's workers); this only relays."""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from server.api.deps import ModelsDep, SettingsDep
from server.api.encoding import ORJSONResponse
from server.api.event_feed import Feeds
from server.api.inputs import teach_examples
from server.api.registry import ModelRegistry
from server.api.schemas.common import error
from server.api.schemas.trainings import (
    FinetuneRequest,
    SnapshotList,
    TrainingBody,
    TrainingCreated,
    TrainingRequest,
    TrainingStatus,
)
from server.cnn import save_model
from server.config import Settings
from server.training.jobs.backend import (
    ENDINGS,
    TrainingError,
    Trainings,
    UnknownJobError,
    WireEvent,
)
from server.training.jobs.request import AnyJobConfig, FinetuneJobConfig

router = APIRouter(prefix="/api/v1/trainings", tags=["trainings"])

REPEAT_AFTER_S = 0.4  # while the job evaluates or loads data, say where it is again
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# OpenAPI links: what a client (or a stateful tester) can do with the id a POST answers
JOB_ROUTES = {
    "GetTraining": ("/api/v1/trainings/{job_id}", "get"),
    "CancelTraining": ("/api/v1/trainings/{job_id}", "delete"),
    "FollowTraining": ("/api/v1/trainings/{job_id}/events", "get"),
    "TrainingSnapshots": ("/api/v1/trainings/{job_id}/snapshots", "get"),
    "TrainingWeights": ("/api/v1/trainings/{job_id}/weights", "get"),
}
JOB_LINKS = {
    name: {
        "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method}",
        "parameters": {"job_id": "$response.body#/id"},
    }
    for name, (path, method) in JOB_ROUTES.items()
}
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: error("no such job (or it ended long ago)"),
    503: error("the training broker cannot be reached"),
}


async def get_trainings(request: Request) -> Trainings:
    trainings: Trainings = request.app.state.trainings
    return trainings


async def get_feeds(request: Request) -> Feeds:
    feeds: Feeds = request.app.state.training_feeds
    return feeds


TrainingsDep = Annotated[Trainings, Depends(get_trainings)]
FeedsDep = Annotated[Feeds, Depends(get_feeds)]


def refused(error: TrainingError) -> HTTPException:
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    return HTTPException(error.status, error.detail, headers=headers)


async def job_status(trainings: Trainings, job_id: str) -> dict[str, Any]:
    """The job's status, 404 when nobody knows it, 503 when the broker cannot be asked."""
    try:
        return await trainings.status(job_id)
    except UnknownJobError as error:
        raise HTTPException(404, str(error.args[0])) from None
    except TrainingError as error:
        raise refused(error) from None


async def known_job(job_id: str, trainings: TrainingsDep) -> str:
    """The id of a job that exists: 404 (or 503) at once, before any stream starts."""
    await job_status(trainings, job_id)
    return job_id


KnownJobDep = Annotated[str, Depends(known_job)]


def client_of(request: Request, client_id: str | None) -> str:
    """Who asks, to keep one job per learner: the page's own id when it sends a well-formed one
    (X-Client-Id), else the address it connects from."""
    if client_id is not None and CLIENT_ID.fullmatch(client_id):
        return f"id:{client_id}"
    return f"addr:{request.client.host if request.client else 'unknown'}"


@router.post(
    "",
    status_code=201,
    response_model=TrainingCreated,
    responses={
        403: error("training is switched off on this server"),
        404: error("a fine-tune's `base_model` is not a served model (the detail names them)"),
        422: error("a bad field, or an example with no digit or a bad image (its index named)"),
        429: error(
            "the queue is full, or this client already has a job queued or running "
            "(with Retry-After)"
        ),
        503: error(
            "MNIST is missing and cannot be downloaded, the broker is away (with Retry-After), "
            "or too many requests are in progress (with Retry-After)"
        ),
        201: {"links": JOB_LINKS},
    },
)
async def start_training(
    request: Request,
    trainings: TrainingsDep,
    models: ModelsDep,
    settings: SettingsDep,
    body: Annotated[TrainingBody | None, Body()] = None,
    client_id: Annotated[
        str | None,
        Header(
            alias="X-Client-Id",
            max_length=64,
            description="the learner's own id (8-64 letters, digits, - or _), kept by the page: "
            "one job queued or running per id; without it, per address",
        ),
    ] = None,
) -> ORJSONResponse:
    """Start a job: a network from scratch, or (`"kind": "finetune"`) a served model taught
    the learner's own drawings. It runs at once when a place is free, else it waits in line
    (`queued`, with its `queue_position`); follow it at `events`."""
    config: AnyJobConfig
    if isinstance(body, FinetuneRequest):
        config = await anyio.to_thread.run_sync(finetune_config, body, models, settings)
    else:
        config = (body or TrainingRequest()).job_config()
    try:
        status = await trainings.start(config, client_of(request, client_id))
    except TrainingError as error:
        raise refused(error) from None
    job_id = status["id"]
    created = {
        "id": job_id,
        "status": status["status"],
        "queue_position": status["queue_position"],
        "events": f"/api/v1/trainings/{job_id}/events",
    }
    return ORJSONResponse(created, status_code=201)


def finetune_config(
    body: FinetuneRequest, models: ModelRegistry, settings: Settings
) -> FinetuneJobConfig:
    """The job a fine-tune request asks for: its base model's file (404 if it serves none of
    that name) and the examples as the model reads them (422 naming a bad one). On a thread:
    preprocessing 500 drawings takes the event loop's time otherwise."""
    path, base = models.served_file(body.base_model)
    examples, labels = teach_examples(body.examples, settings)
    return FinetuneJobConfig(
        base_model=body.base_model,
        base_path=str(path),
        base_sha256=base.sha256,
        examples=examples,
        labels=labels,
        steps=body.steps,
        learning_rate=body.learning_rate,
        seed=body.seed,
    )


@router.get("/{job_id}", response_model=TrainingStatus, responses=UNKNOWN)
async def training_status(job_id: str, trainings: TrainingsDep) -> ORJSONResponse:
    """Where the job is: status, place in line, step, latest loss and accuracies, settings."""
    return ORJSONResponse(await job_status(trainings, job_id))


@router.delete("/{job_id}", response_model=TrainingStatus, responses=UNKNOWN)
async def cancel_training(job_id: str, trainings: TrainingsDep) -> ORJSONResponse:
    """Stop the job: a waiting one at once, a running one within 2 s; a finished job stays as
    it is. Answers the status after."""
    await job_status(trainings, job_id)
    try:
        return ORJSONResponse(await trainings.cancel(job_id))
    except UnknownJobError as error:
        raise HTTPException(404, str(error.args[0])) from None
    except TrainingError as error:
        raise refused(error) from None


def last_event_id(value: str | None) -> int:
    """The id a reconnecting client saw last; anything but a number starts from the beginning."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


EVENTS_DOC = (
    "While the job waits: `queued` (`{position}`, 1 = next to start), again whenever its place "
    "changes. Then `progress` (at least every 0.5 s while running), `evaluation` (at least 4 an "
    "epoch), then one of `done`, `cancelled` or `failed`, after which the stream ends. Each "
    "event has an `id` (1, 2, ... per job); reconnect with `Last-Event-ID`, to any replica, to "
    "get only the later ones."
)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses=UNKNOWN,
    description=EVENTS_DOC,
)
async def training_events(
    job_id: KnownJobDep,
    feeds: FeedsDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The job's events as they come, from the first one (or after `Last-Event-ID`)."""
    after = last_event_id(last_event_id_header)
    async with feeds.follow(job_id) as feed:
        latest_progress: WireEvent | None = None
        quiet_since = time.monotonic()
        while True:
            events = await feed.wait(after, REPEAT_AFTER_S)
            for event in events:
                yield sse(event)
                after, quiet_since = event.id, time.monotonic()
                if event.name == "progress":
                    latest_progress = event
                if event.name in ENDINGS:
                    return
            if feed.ended and not feed.after(after):
                return  # resumed after the end: nothing more will come
            if time.monotonic() - quiet_since >= REPEAT_AFTER_S:
                # at least 2 events a second while running, even while the job is busy between
                # steps: the latest progress again, under the id of the last event sent
                repeat = latest_progress or latest(feed.events, "progress")
                if repeat is not None and not waiting(feed.events):
                    yield sse(dataclasses.replace(repeat, id=after))
                quiet_since = time.monotonic()


def latest(events: list[WireEvent], name: str) -> WireEvent | None:
    return next((e for e in reversed(events) if e.name == name), None)


def waiting(events: list[WireEvent]) -> bool:
    """The job is still in line: its newest event is a `queued` one."""
    return bool(events) and events[-1].name == "queued"


def sse(event: WireEvent) -> ServerSentEvent:
    return ServerSentEvent(raw_data=event.data, event=event.name, id=str(event.id))


@router.get("/{job_id}/snapshots", response_model=SnapshotList, responses=UNKNOWN)
async def training_snapshots(job_id: str, trainings: TrainingsDep) -> ORJSONResponse:
    """The steps whose weights were kept, with the validation accuracy at each."""
    await job_status(trainings, job_id)
    kept = await trainings.snapshots(job_id)
    snapshots = [{"step": s, "val_accuracy": a} for s, a in kept]
    return ORJSONResponse({"id": job_id, "snapshots": snapshots})


@router.get(
    "/{job_id}/weights",
    response_class=Response,
    responses={
        **UNKNOWN,
        200: {"content": {"application/octet-stream": {}}, "description": "the .npz file"},
        409: error("the job has not finished"),
    },
)
async def training_weights(job_id: str, trainings: TrainingsDep) -> Response:
    """The finished model as a weights file (`convscope serve --weights`, `convscope evaluate`)."""
    await job_status(trainings, job_id)
    try:
        model, metadata = await trainings.weights(job_id)
    except ValueError as error:
        raise HTTPException(409, str(error)) from None
    with tempfile.TemporaryDirectory(prefix="convscope-weights-") as directory:
        path = Path(directory) / "weights.npz"
        save_model(path, model, metadata)
        content = path.read_bytes()
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="training-{job_id}.npz"'},
    )
