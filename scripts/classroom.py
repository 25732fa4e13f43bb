"""A class trains at once: N learners each start a real job, follow its stream from the replica
that did not take their POST, and predict with their model when it is done.

    MNIST_DIR=../shared/mnist python scripts/classroom.py --learners 30 --replicas 2 --workers 2

Starts everything itself on loopback (a redis-server, `convscope serve` replicas, `convscope
worker`s, each stopped by PID at the end), is bounded in count and time (--timeout), and prints
one JSON line per run and a Markdown table: time to the first event, queue wait, job time,
events lost or repeated, /healthz p99 while the class trains, the broker's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.cli.local_broker import local_redis, local_worker
from server.cli.local_server import local_server
from server.cnn import save_model
from server.cnn.architectures import mnist_cnn

PIXELS = np.zeros((28, 28))
PIXELS[6:22, 13:15] = 1.0


@dataclass
class Learner:
    index: int
    started: float = 0.0
    job_id: str = ""
    first_event_s: float | None = None
    queue_wait_s: float | None = None  # POST -> the first progress event
    job_s: float | None = None  # the first progress event -> done
    ending: str = ""
    lost: int = 0
    repeated: int = 0
    predicted: int = 0  # the status of a predict with the learner's model
    events: list[tuple[int, str]] = field(default_factory=list)


def count_lost_and_repeated(events: list[tuple[int, str]]) -> tuple[int, int]:
    """Ids run 1, 2, ...: a gap is a lost event; an id seen again is a repeat, except the
    server's repeat of the latest progress under the last id sent (its keep-alive)."""
    lost = repeated = 0
    last = 0
    for event_id, name in events:
        if event_id > last:
            lost += event_id - last - 1
            last = event_id
        elif name != "progress":
            repeated += 1
    return lost, repeated


async def learn(
    learner: Learner, post_url: str, follow_url: str, body: dict[str, Any], deadline: float
) -> None:
    async with httpx.AsyncClient(timeout=max(1.0, deadline - time.monotonic())) as client:
        learner.started = time.monotonic()
        answer = await client.post(
            f"{post_url}/api/v1/trainings",
            json=body,
            headers={"X-Client-Id": f"classroom-learner-{learner.index:04d}"},
        )
        if answer.status_code != 201:
            learner.ending = f"refused {answer.status_code}"
            return
        learner.job_id = answer.json()["id"]
        path = f"/api/v1/trainings/{learner.job_id}/events"
        fields: dict[str, str] = {}
        started_training = None
        async with client.stream("GET", follow_url + path) as stream:
            async for line in stream.aiter_lines():
                if line:
                    key, _, value = line.partition(": ")
                    fields[key] = value
                    continue
                if "event" not in fields:
                    continue
                now = time.monotonic() - learner.started
                name = fields["event"]
                learner.events.append((int(fields["id"]), name))
                if learner.first_event_s is None:
                    learner.first_event_s = now
                if name == "progress" and started_training is None:
                    started_training = now
                    learner.queue_wait_s = now
                if name in {"done", "cancelled", "failed"}:
                    learner.ending = name
                    if started_training is not None:
                        learner.job_s = now - started_training
                    break
                fields = {}
        learner.lost, learner.repeated = count_lost_and_repeated(learner.events)
        predicted = await client.post(
            f"{post_url}/api/v1/predict",
            json={"pixels": PIXELS.tolist(), "model": f"training:{learner.job_id}"},
        )
        learner.predicted = predicted.status_code


class HealthProbe:
    """/healthz on every replica, one after another, until stopped: its latencies."""

    def __init__(self, urls: list[str]) -> None:
        self.urls, self.times = urls, []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopped.is_set():
                for url in self.urls:
                    started = time.perf_counter()
                    client.get(f"{url}/healthz")
                    self.times.append(time.perf_counter() - started)
                time.sleep(0.02)


def summary(learners: list[Learner], probe: HealthProbe, peak_mb: float, run_s: float) -> dict:
    def stats(values: list[float | None]) -> dict[str, float]:
        present = [v for v in values if v is not None]
        if not present:
            return {}
        return {
            "median": round(statistics.median(present), 2),
            "max": round(max(present), 2),
        }

    return {
        "learners": len(learners),
        "done": sum(learner.ending == "done" for learner in learners),
        "predicted_200": sum(learner.predicted == 200 for learner in learners),
        "first_event_s": stats([learner.first_event_s for learner in learners]),
        "queue_wait_s": stats([learner.queue_wait_s for learner in learners]),
        "job_s": stats([learner.job_s for learner in learners]),
        "events_lost": sum(learner.lost for learner in learners),
        "events_repeated": sum(learner.repeated for learner in learners),
        "healthz_p99_ms": round(float(np.quantile(probe.times, 0.99)) * 1000, 1),
        "healthz_samples": len(probe.times),
        "broker_peak_mb": round(peak_mb, 1),
        "run_s": round(run_s, 1),
    }


def table(result: dict[str, Any]) -> str:
    rows = [
        ("learners, done, predicted with their model", "{learners}, {done}, {predicted_200}"),
        (
            "time to the first event (median / max)",
            "{first_event_s[median]} / {first_event_s[max]} s",
        ),
        ("queue wait (median / max)", "{queue_wait_s[median]} / {queue_wait_s[max]} s"),
        ("job time (median / max)", "{job_s[median]} / {job_s[max]} s"),
        ("events lost, repeated", "{events_lost}, {events_repeated}"),
        ("/healthz p99 while the class trains", "{healthz_p99_ms} ms ({healthz_samples} samples)"),
        ("broker's peak memory", "{broker_peak_mb} MB"),
        ("the whole class", "{run_s} s"),
    ]
    lines = ["| figure | measured |", "|---|---|"]
    lines += [f"| {name} | {value.format(**result)} |" for name, value in rows]
    return "\n".join(lines)


async def run_class(args: argparse.Namespace, urls: list[str]) -> list[Learner]:
    body = {"train_size": args.train_size, "epochs": 1, "seed": 0}
    deadline = time.monotonic() + args.timeout
    learners = [Learner(i) for i in range(args.learners)]
    tasks = []
    for learner in learners:  # they press Start within --arrival-s of each other
        post_url = urls[learner.index % len(urls)]
        follow_url = urls[(learner.index + 1) % len(urls)]
        tasks.append(asyncio.create_task(learn(learner, post_url, follow_url, body, deadline)))
        await asyncio.sleep(args.arrival_s / max(1, args.learners))
    await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, deadline - time.monotonic()))
    return learners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="each with one slot")
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--arrival-s", type=float, default=10.0, help="over which they start")
    parser.add_argument("--timeout", type=float, default=900.0, help="the whole run, at most")
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"))
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("MNIST is needed: --data-dir or $MNIST_DIR")
    weights = Path(os.environ.get("TMPDIR", "/tmp")) / "classroom-untrained.npz"
    save_model(weights, mnist_cnn(seed=0), {})
    with ExitStack() as stack:
        broker = stack.enter_context(local_redis())
        for _ in range(args.workers):
            stack.enter_context(local_worker(broker.url, args.data_dir, slots=1))
        env = {"CONVSCOPE_BROKER_URL": broker.url, "CONVSCOPE_COMPUTE_PROCESS": "false"}
        replicas = [
            stack.enter_context(local_server(weights, env=env)) for _ in range(args.replicas)
        ]
        urls = [replica.url for replica in replicas]
        probe = HealthProbe(urls)
        probe.thread.start()
        started = time.monotonic()
        learners = asyncio.run(run_class(args, urls))
        run_s = time.monotonic() - started
        probe.stopped.set()
        probe.thread.join()
        peak_mb = broker.peak_memory_bytes() / 2**20
    result = summary(learners, probe, peak_mb, run_s)
    result["setup"] = {
        "replicas": args.replicas,
        "workers": args.workers,
        "train_size": args.train_size,
        "arrival_s": args.arrival_s,
        "cpus": len(os.sched_getaffinity(0)),
    }
    print(json.dumps(result))
    print(table(result))
    return 0 if result["done"] == args.learners else 1


if __name__ == "__main__":
    raise SystemExit(main())
