"""`convscope worker`'s body: take training jobs from the shared broker's queue (SAQ), run each
in a process of its own as the embedded mode does (job.py), and mirror what it reports onto the
broker (broker.py) for every replica to relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from saq import Worker
from saq.queue.redis import RedisQueue
from saq.types import Context, PartialTimersDict

from server.training.jobs.backend import ENDINGS
from server.training.jobs.broker import (
    ANNOUNCE,
    APPEND,
    FINISH,
    QUEUE,
    RUNNING,
    SAQ_PREFIX,
    events_key,
    job_key,
    state_bytes,
    weights_key,
)
from server.training.jobs.job import ACTIVE, Job
from server.training.jobs.request import config_from_json
from server.training.jobs.shared import LOST, SWEEP_S, sweep_lost_jobs

logger = logging.getLogger("convscope")

MIRROR_S = 0.1  # how often a job's news goes to the broker (and a cancel is looked for)
LATEST_EVERY_S = 1.0  # the live weights, for `model: "training:<id>"`, at most this often
HEARTBEAT_EVERY_S = 1.0  # SAQ's heartbeat: a job not touched for HEARTBEAT_S is swept
STOPPED = "the worker training it was shut down; start the job again"

# Start the job only if it is still waiting and nobody cancelled it meanwhile.
BEGIN = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' or redis.call('HGET', KEYS[1], 'cancel') then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'running', 'position', 0)
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""


class Mirror:
    """What one running job has reported so far, copied onto the broker as it grows."""

    def __init__(self, broker: Any, job_id: str, ttl: int) -> None:
        self.broker, self.job_id, self.ttl = broker, job_id, ttl
        self.append = broker.register_script(APPEND)
        self.finish = broker.register_script(FINISH)
        self.sent_events = 0  # of job.events
        self.sent_snapshots = 0
        self.latest_step, self.latest_at = -1, 0.0

    async def push(self, job: Job) -> None:
        """New progress, snapshots, weights and events; the ending event last, once the
        weights it promises are there."""
        status = job.status_data()
        fields: dict[str, Any] = {
            key: "" if status[key] is None else status[key]
            for key in ("step", "epoch", "loss", "accuracy", "val_accuracy", "img_per_s")
        }
        with job.lock:
            snapshots = list(job.snapshots)
            state, state_step = job.state, job.state_step
            done = job.done
        async with self.broker.pipeline(transaction=False) as pipe:
            key = job_key(self.job_id)
            pipe.hset(key, mapping=fields)
            for step, _, weights in snapshots[self.sent_snapshots :]:
                pipe.set(weights_key(self.job_id, step), state_bytes(weights), ex=self.ttl)
            if len(snapshots) > self.sent_snapshots:
                kept = [[step, accuracy] for step, accuracy, _ in snapshots]
                pipe.hset(key, "snapshots", json.dumps(kept))
            now = time.monotonic()
            final = done is not None or status["status"] not in ACTIVE
            if state_step != self.latest_step and (now - self.latest_at >= LATEST_EVERY_S or final):
                pipe.set(weights_key(self.job_id, "latest"), state_bytes(state), ex=self.ttl)
                pipe.hset(key, "latest_step", str(state_step))
                self.latest_step, self.latest_at = state_step, now
            if done is not None:
                pipe.hset(key, "metadata", json.dumps(done.metadata, default=str))
            pipe.expire(key, self.ttl)
            await pipe.execute()
        self.sent_snapshots = len(snapshots)
        for event in job.events[self.sent_events :]:
            await self.send(event.name, event.json, job.error)
            self.sent_events += 1

    async def send(self, name: str, data: str, error: str | None) -> None:
        keys = [job_key(self.job_id), events_key(self.job_id)]
        if name in ENDINGS:
            await self.finish(keys=keys, args=["running", name, name, data, error or "", self.ttl])
        else:
            await self.append(keys=keys, args=[name, data, self.ttl])

    async def fail(self, reason: str) -> None:
        keys = [job_key(self.job_id), events_key(self.job_id)]
        data = json.dumps({"reason": reason})
        await self.finish(keys=keys, args=["running", "failed", "failed", data, reason, self.ttl])


class Trainer:
    """The task SAQ runs for each job, with what it needs: the broker and MNIST."""

    def __init__(self, broker: Any, mnist_dir: Path, ttl: int) -> None:
        """`broker`: a redis.asyncio client (Any: redis-py types each command for its sync and
        async clients at once, as `Awaitable[T] | T`)."""
        self.broker, self.mnist_dir, self.ttl = broker, mnist_dir, ttl
        self.begin = broker.register_script(BEGIN)
        self.announce = broker.register_script(ANNOUNCE)

    async def train(self, ctx: Context, *, job_id: str, config: dict[str, Any]) -> str:
        if not await self.begin(keys=[job_key(job_id), RUNNING], args=[job_id]):
            return "not started: cancelled while it waited"
        await self.announce(keys=[f"saq:{QUEUE}:queued"], args=[SAQ_PREFIX, self.ttl])
        logger.info("training %s: %s", job_id, config)
        mirror = Mirror(self.broker, job_id, self.ttl)
        # started on a thread (it spawns a process), and finished even if this task is
        # cancelled meanwhile: a job's process is never left behind without its Job
        starting = asyncio.ensure_future(
            asyncio.to_thread(Job, config_from_json(config), self.mnist_dir, job_id=job_id)
        )
        try:
            job = await asyncio.shield(starting)
        except asyncio.CancelledError:
            await asyncio.shield(self.wind_up(await asyncio.shield(starting), mirror))
            raise
        try:
            architecture = json.dumps(job.template_spec())
            await self.broker.hset(job_key(job_id), "architecture", architecture)
            return await self.follow(ctx, job, mirror)
        except asyncio.CancelledError:  # SAQ's abort, or this worker shutting down
            await asyncio.shield(self.wind_up(job, mirror))
            raise
        except Exception as error:  # the broker refused a write (full, or gone): stop the job
            logger.exception("training %s: cannot report to the broker", job_id)
            await asyncio.to_thread(job.stop)
            with contextlib.suppress(RedisError):
                await mirror.fail(f"the worker could not report the job to the broker ({error})")
            raise

    async def follow(self, ctx: Context, job: Job, mirror: Mirror) -> str:
        beat = time.monotonic()
        while True:
            await mirror.push(job)
            if job.status not in ACTIVE and mirror.sent_events == len(job.events):
                return job.status
            if await self.broker.hget(job_key(job.id), "cancel"):
                await asyncio.to_thread(job.stop)
            if time.monotonic() - beat >= HEARTBEAT_EVERY_S:
                await ctx["job"].update()  # touches it: SAQ's heartbeat
                beat = time.monotonic()
            await asyncio.sleep(MIRROR_S)

    async def wind_up(self, job: Job, mirror: Mirror) -> None:
        """Stop the job's process and say how it ended: `cancelled` when its learner asked,
        else `failed`, in words (the worker was shut down under it)."""
        with contextlib.suppress(RedisError):
            await mirror.push(job)  # what it had reported, before stopping adds its ending
        await asyncio.to_thread(job.stop)
        with contextlib.suppress(RedisError):
            if await self.broker.hget(job_key(job.id), "cancel"):
                await mirror.push(job)
            else:
                await mirror.fail(STOPPED)


async def upkeep(queue: RedisQueue, ttl: int) -> None:
    """Sweep lost jobs from the workers too, so a fleet with no replica up still ends them."""
    finish = queue.redis.register_script(FINISH)
    while True:
        with contextlib.suppress(RedisError):
            await sweep_lost_jobs(queue, finish, ttl)
        await asyncio.sleep(SWEEP_S)


async def run_worker(url: str, slots: int, mnist_dir: Path, ttl: int) -> None:
    """Take jobs until SIGINT or SIGTERM; a job in hand is stopped and said to have failed."""
    broker: Any = aioredis.from_url(url)
    queue = RedisQueue(broker, name=QUEUE, swept_error_message=LOST)
    trainer = Trainer(broker, mnist_dir, ttl)
    worker = Worker(
        queue,
        functions=[("train", trainer.train)],
        concurrency=slots,
        timers=PartialTimersDict(schedule=1, worker_info=10, sweep=int(SWEEP_S) + 1, abort=1),
        cancellation_hard_deadline_s=5.0,
    )
    await queue.connect()
    sweeping = asyncio.create_task(upkeep(queue, ttl))
    try:
        await worker.start()
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        await queue.disconnect()
