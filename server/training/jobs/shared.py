"""Training jobs on a shared broker (CONVSCOPE_BROKER_URL): the server's side. A job goes on
SAQ's queue for `convscope worker`s; its events, progress and weights come back through the
broker (broker.py), so every replica answers for every job, whichever took the POST.

Why SAQ: an asyncio job queue on Redis that is well kept and small, whose semantics fit a
training run: a queued job is removed by `abort` at once, a running one is cancelled in the
worker, and a worker that dies is noticed by its missed heartbeats (`sweep`), never left
`running`. Our own events use a Redis stream per job, so a reconnecting stream resumes on any
replica from its Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import logging
import threading
import uuid
from collections import OrderedDict
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from saq.job import Status as SaqStatus
from saq.queue.redis import RedisQueue

from server.cnn import Sequential
from server.cnn.serialize import state_sha256
from server.inference import Predictor
from server.training.jobs.backend import (
    TrainingError,
    UnknownJobError,
    WireEvent,
    parse_model_name,
)
from server.training.jobs.broker import (
    ADMIT,
    ANNOUNCE,
    FINISH,
    QUEUE,
    RUNNING,
    SAQ_PREFIX,
    client_key,
    events_key,
    job_key,
    state_from_bytes,
    text,
    weights_key,
)
from server.training.jobs.job import MakePredictor
from server.training.jobs.local import already_training, queue_full, refuse_when_off
from server.training.jobs.request import AnyJobConfig

logger = logging.getLogger("convscope")

HEARTBEAT_S = 6  # a running job whose worker has not touched it for this long is swept
SWEEP_S = 2.0  # how often a replica looks for jobs whose worker has gone
BROKER_TIMEOUT_S = 2.0  # a request waits no longer than this for an unreachable broker
CACHED_PREDICTORS = 16  # models of training jobs kept per replica (each a few MB at most)
LOST = (
    "the worker training it stopped answering (it was killed, or lost the broker); "
    "start the job again"
)
BROKER_DOWN = "the training broker cannot be reached right now; try again in a few seconds"


def unreachable() -> TrainingError:
    return TrainingError(503, BROKER_DOWN, retry_after_s=5)


def status_from_hash(job_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """The API's status body from the job's hash on the broker."""
    value = {key.decode(): text(raw) for key, raw in fields.items()}
    config = json.loads(value["config"] or "{}")
    place = int(value.get("position") or 0)

    def number(name: str) -> float | None:
        raw = value.get(name)
        return None if raw in (None, "") else float(raw)

    return {
        "id": job_id,
        "status": value["status"],
        # taken by a worker and not begun yet: no longer in line, next to start all the same
        "queue_position": max(1, place) if value["status"] == "queued" else 0,
        "step": int(value.get("step") or 0),
        "steps_total": int(value.get("steps_total") or 0),
        "epoch": int(value.get("epoch") or 1),
        "loss": number("loss"),
        "accuracy": number("accuracy"),
        "val_accuracy": number("val_accuracy"),
        "img_per_s": number("img_per_s") or 0.0,
        "config": config,
        "error": value.get("error") or None,
    }


class SharedTrainings:
    """The broker's jobs as the API sees them (server.training.jobs.backend.Trainings)."""

    def __init__(
        self,
        url: str,
        *,
        enabled: bool,
        max_queued: int,
        ttl_s: float,
        make_predictor: MakePredictor,
    ) -> None:
        timeouts = {
            "socket_timeout": BROKER_TIMEOUT_S,
            "socket_connect_timeout": BROKER_TIMEOUT_S,
        }
        # Any: redis-py types each command for its sync and async clients at once (Awaitable | T)
        self.redis: Any = aioredis.from_url(url, **timeouts)
        self.sync: Any = redis.Redis.from_url(url, **timeouts)  # for predictor(), on worker threads
        self.queue = RedisQueue(self.redis, name=QUEUE, swept_error_message=LOST)
        self.enabled, self.max_queued, self.ttl = enabled, max_queued, int(ttl_s)
        self.make_predictor = make_predictor
        self.admit = self.redis.register_script(ADMIT)
        self.announce = self.redis.register_script(ANNOUNCE)
        self.finish = self.redis.register_script(FINISH)
        self.predictors: OrderedDict[tuple[str, int], Predictor] = OrderedDict()
        self.templates: dict[bytes, Sequential] = {}
        self.lock = threading.Lock()
        self.sweeper: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, **options: Any) -> SharedTrainings:
        """Connect lazily: a broker that is away now is tried again at every request."""
        trainings = cls(url, **options)
        await trainings.queue.connect()
        trainings.sweeper = asyncio.create_task(trainings.sweep_forever(), name="training-sweep")
        return trainings

    # --- the contract ------------------------------------------------------------------

    async def start(self, config: AnyJobConfig, client: str) -> dict[str, Any]:
        refuse_when_off(self.enabled)
        job_id = new_job_id()
        config_json = json.dumps(config.public())
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            answer = await self.admit(
                keys=[client_key(client), self.queue.namespace("queued")],
                args=[job_id, self.max_queued, self.ttl, config_json, created, SAQ_PREFIX],
            )
            verdict = [text(part) for part in answer]
            if verdict[0] == "busy":
                raise already_training(str(verdict[1]), str(verdict[2]))
            if verdict[0] == "full":
                raise queue_full(self.max_queued)
            await self.redis.hset(job_key(job_id), "steps_total", str(config.steps_total()))
            await self.queue.enqueue(
                "train",
                key=job_id,
                job_id=job_id,
                config=config.to_json(),
                timeout=0,  # a run takes as long as it takes; a dead worker is found by heartbeat
                heartbeat=HEARTBEAT_S,
                retries=1,  # no retry: a run that lost its worker ends `failed`, in words
                ttl=self.ttl,
            )
            await self._announce()
            return await self.status(job_id)
        except ResponseError as error:
            if "OOM" not in str(error):
                raise
            raise TrainingError(
                503,
                "the training broker is full; try again when some jobs have ended",
                retry_after_s=30,
            ) from None
        except RedisError:
            raise unreachable() from None

    async def status(self, job_id: str) -> dict[str, Any]:
        try:
            fields = await self.redis.hgetall(job_key(job_id))
        except RedisError:
            raise unreachable() from None
        if not fields:
            raise UnknownJobError(
                f"no training {job_id!r}: it never existed, or ended more than {self.ttl} s ago"
            )
        return status_from_hash(job_id, fields)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """A queued job leaves the queue at once; a running one is told to stop (its worker
        looks 10 times a second) and this waits, at most 2 s, until it has."""
        try:
            await self.redis.hset(job_key(job_id), "cancel", "1")
            saq_job = await self.queue.job(job_id)
            if saq_job is not None and saq_job.status == SaqStatus.QUEUED:
                await self.queue.abort(saq_job, "cancelled")
                await self.finish(
                    keys=[job_key(job_id), events_key(job_id)],
                    args=["queued", "cancelled", "cancelled", '{"step":0}', "", self.ttl],
                )
                await self._announce()
            for _ in range(40):
                status = await self.status(job_id)
                if status["status"] not in {"queued", "running"}:
                    return status
                await asyncio.sleep(0.05)
            return status
        except RedisError:
            raise unreachable() from None

    async def events_after(self, job_id: str, after: int) -> list[WireEvent]:
        try:
            entries = await self.redis.xrange(events_key(job_id), f"(0-{after}", "+")
            if not entries and not await self.redis.exists(job_key(job_id)):
                raise UnknownJobError(f"no training {job_id!r} any more")
        except RedisError:
            raise unreachable() from None
        return [
            WireEvent(
                int(entry_id.decode().partition("-")[2]),
                fields[b"name"].decode(),
                fields[b"data"].decode(),
            )
            for entry_id, fields in entries
        ]

    async def snapshots(self, job_id: str) -> list[tuple[int, float]]:
        try:
            raw = await self.redis.hget(job_key(job_id), "snapshots")
        except RedisError:
            raise unreachable() from None
        return [(int(step), float(accuracy)) for step, accuracy in json.loads(raw or "[]")]

    async def weights(self, job_id: str) -> tuple[Sequential, dict[str, Any]]:
        status = await self.status(job_id)
        if status["status"] != "done":
            raise ValueError(f"training {job_id} is {status['status']}; its weights come when done")
        try:
            data = await self.redis.get(weights_key(job_id, "latest"))
            metadata, architecture = await self.redis.hmget(
                job_key(job_id), ["metadata", "architecture"]
            )
        except RedisError:
            raise unreachable() from None
        if data is None or architecture is None:
            raise UnknownJobError(f"training {job_id}: its weights have expired")
        metadata = json.loads(metadata or "{}")
        model = self._model(architecture)
        model.load_state_dict(state_from_bytes(data), source=f"training {job_id}")
        return model, metadata

    def predictor(self, name: str) -> Predictor:
        """The latest weights ("<id>") or the snapshot nearest a step ("<id>@<step>"), fetched
        from the broker once per version and kept (the newest CACHED_PREDICTORS)."""
        job_id, step = parse_model_name(name)
        try:
            architecture, latest, kept, metadata = self.sync.hmget(
                job_key(job_id), ["architecture", "latest_step", "snapshots", "metadata"]
            )
        except RedisError:
            raise KeyError(f"training:{name}: {BROKER_DOWN}") from None
        if architecture is None:
            raise KeyError(f"no training {job_id!r} with weights yet (training:{name})")
        steps = [int(s) for s, _ in json.loads(kept or "[]")]
        if step is None or not steps:
            key: int = int(latest or 0)
            stored: int | str = "latest"
        else:
            key = stored = min(steps, key=lambda s: (abs(s - step), s))
        with self.lock:
            cached = self.predictors.get((job_id, key))
            if cached is not None:
                self.predictors.move_to_end((job_id, key))
                return cached
        data = self.sync.get(weights_key(job_id, stored))
        if data is None:
            raise KeyError(f"training:{name}: no weights yet; the job has not started")
        state = state_from_bytes(data)
        model = self._model(architecture)
        model.load_state_dict(state, source=f"training {job_id} step {key}")
        info: dict[str, Any] = {"training": job_id, "step": key}
        if metadata and stored == "latest":
            info = {**json.loads(metadata), **info}
        predictor = self.make_predictor(model, info, state_sha256(state))
        with self.lock:
            self.predictors[(job_id, key)] = predictor
            while len(self.predictors) > CACHED_PREDICTORS:
                self.predictors.popitem(last=False)
        return predictor

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        with contextlib.suppress(RedisError):
            await self.queue.disconnect()
        self.sync.close()

    # --- upkeep ----------------------------------------------------------------------------

    def _model(self, architecture: bytes) -> Sequential:
        """A model of the job's architecture (the spec its worker stored), copied from one
        built once per architecture."""
        with self.lock:
            template = self.templates.get(architecture)
            if template is None:
                template = self.templates[architecture] = Sequential.from_spec(
                    json.loads(architecture)
                )
        return copy.deepcopy(template)

    async def _announce(self) -> None:
        await self.announce(keys=[self.queue.namespace("queued")], args=[SAQ_PREFIX, self.ttl])

    async def sweep_forever(self) -> None:
        """Every SWEEP_S: let SAQ find jobs whose worker stopped beating, and end those jobs
        `failed`, in words (any replica may do it; the scripts make it happen once)."""
        while True:
            try:
                await sweep_lost_jobs(self.queue, self.finish, self.ttl)
            except RedisError:
                pass  # the broker away: its jobs wait with it
            except Exception:
                logger.exception("sweeping training jobs failed")
            await asyncio.sleep(SWEEP_S)


async def sweep_lost_jobs(queue: RedisQueue, finish: Any, ttl: int) -> None:
    """SAQ's sweep (at most once per SWEEP_S across the fleet), then every job we think is
    running whose SAQ job is no longer active ends `failed` with the reason."""
    await queue.sweep(lock=int(SWEEP_S), abort=1.0)
    broker: Any = queue.redis
    for raw in await broker.smembers(RUNNING):
        job_id = raw.decode()
        saq_job = await queue.job(job_id)
        if saq_job is not None and saq_job.status in {SaqStatus.ACTIVE, SaqStatus.QUEUED}:
            continue
        reason = json.dumps({"reason": LOST})
        await finish(
            keys=[job_key(job_id), events_key(job_id)],
            args=["running", "failed", "failed", reason, LOST, ttl],
        )
        await broker.srem(RUNNING, job_id)


def new_job_id() -> str:
    return uuid.uuid4().hex
