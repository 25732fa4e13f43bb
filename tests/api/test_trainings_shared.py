"""The shared-broker mode as a class meets it, across real processes on loopback: a
redis-server, two replicas and `convscope worker`s, each started and stopped by PID. Replicas
and workers die mid-job here on purpose (SIGKILL), and the broker goes away and comes back."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server.cli.local_broker import LocalRedis, local_redis, local_worker, redis_server_path
from server.cli.local_server import LocalServer, local_server
from tests.api.sse import sse_events

pytestmark = pytest.mark.slow

LONGER = {"train_size": 4000, "batch_size": 32, "seed": 3}  # 94 steps: several seconds
SMALL = {"train_size": 1000, "batch_size": 64, "seed": 1}
CHROME = {"Accept": "text/event-stream"}


def mnist_dir() -> str:
    directory = os.environ.get("MNIST_DIR")
    if not directory:
        pytest.skip("MNIST_DIR is not set; training jobs need MNIST (CI: ../shared/mnist)")
    return directory


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalRedis]:
    if redis_server_path() is None:
        pytest.skip("the shared mode needs redis-server (Debian: apt-get install redis-server)")
    with local_redis() as running:
        yield running


def env_for(broker: LocalRedis, **extra: str) -> dict[str, str]:
    return {
        "CONVSCOPE_BROKER_URL": broker.url,
        "CONVSCOPE_MNIST_DIR": mnist_dir(),
        "CONVSCOPE_MNIST_DOWNLOAD": "false",
        **extra,
    }


def post(server: LocalServer, body: dict[str, Any], client: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/trainings", json=body, headers={"X-Client-Id": client})


def status(server: LocalServer, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/v1/trainings/{job_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def wait_for(server: LocalServer, job_id: str, wanted: set[str], seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while (now := status(server, job_id))["status"] not in wanted:
        assert time.monotonic() < deadline, f"still {now['status']} after {seconds} s: {now}"
        time.sleep(0.1)
    return now


def event_ids(url: str, last_event_id: int | None = None, stop_after: int | None = None) -> list:
    """(id, name) of each event as it arrives (a repeated progress keeps the last id sent)."""
    headers = dict(CHROME)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    seen: list[tuple[int, str]] = []
    with httpx.stream("GET", url, headers=headers, timeout=60) as answer:
        assert answer.status_code == 200, answer.read()
        for fields in sse_events(answer.iter_lines()):
            seen.append((int(fields["id"]), fields["event"]))
            if stop_after is not None and len(seen) >= stop_after:
                break
    return seen


def distinct(events: list[tuple[int, str]]) -> list[int]:
    """The ids of the events themselves, without the repeats of the latest progress."""
    ids: list[int] = []
    for event_id, _ in events:
        if not ids or event_id > ids[-1]:
            ids.append(event_id)
    return ids


def test_a_replica_dies_mid_stream_and_another_resumes_with_nothing_lost_or_repeated(
    broker: LocalRedis, weights_path: Path
) -> None:
    """Start on A, follow on B from the start; a second follower on A loses A (SIGKILL) and
    resumes on B with Last-Event-ID: its events, joined, are B's, each once. Then a second job
    is cancelled through B while A had started it."""
    env = env_for(broker)
    with (
        local_worker(broker.url, mnist_dir()),
        local_server(weights_path, env=env) as replica_a,
        local_server(weights_path, env=env) as replica_b,
    ):
        created = post(replica_a, LONGER, "learner-replica")
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        path = f"/api/v1/trainings/{job_id}/events"
        whole: list[tuple[int, str]] = []
        follower = threading.Thread(target=lambda: whole.extend(event_ids(replica_b.url + path)))
        follower.start()

        before = event_ids(replica_a.url + path, stop_after=12)
        replica_a.process.send_signal(signal.SIGKILL)
        replica_a.process.wait(timeout=10)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{replica_a.url}/healthz", timeout=2)
        after = event_ids(replica_b.url + path, last_event_id=distinct(before)[-1])
        follower.join(timeout=120)

        assert not follower.is_alive()
        assert whole[-1][1] == "done"
        assert distinct(whole) == list(range(1, distinct(whole)[-1] + 1))
        resumed_at = distinct(before)[-1]
        # none lost, none twice: after the resume only later events, or the keep-alive repeat of
        # the latest progress under the last id the client had (the contract's repeat)
        assert all(i > resumed_at or (i, n) == (resumed_at, "progress") for i, n in after)
        assert distinct(before + after) == distinct(whole)
        assert after[-1] == whole[-1]

        second = post(replica_b, LONGER, "learner-cancel")
        assert second.status_code == 201
        second_id = second.json()["id"]
        wait_for(replica_b, second_id, {"running"}, 30)
        time.sleep(1.0)
        clock = time.monotonic()
        stopped = httpx.delete(f"{replica_b.url}/api/v1/trainings/{second_id}")
        assert time.monotonic() - clock < 2.0
        assert stopped.json()["status"] == "cancelled"
        events = event_ids(f"{replica_b.url}/api/v1/trainings/{second_id}/events")
        assert events[-1][1] == "cancelled"


def test_a_worker_killed_mid_job_ends_it_failed_in_words_and_the_next_job_runs(
    broker: LocalRedis, weights_path: Path
) -> None:
    with local_server(weights_path, env=env_for(broker)) as server:
        with local_worker(broker.url, mnist_dir()) as worker:
            created = post(server, {**LONGER, "train_size": 20000}, "learner-killed")
            job_id = created.json()["id"]
            wait_for(server, job_id, {"running"}, 30)
            time.sleep(1.0)
            killed_at = time.monotonic()
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=10)
            ended = wait_for(server, job_id, {"failed", "done", "cancelled"}, 30)
            took = time.monotonic() - killed_at
        assert ended["status"] == "failed"
        assert "worker" in ended["error"]
        assert "stopped answering" in ended["error"]
        assert took < 30, f"failed only {took:.1f} s after the kill"
        print(f"failed {took:.1f} s after the SIGKILL")
        events = event_ids(f"{server.url}/api/v1/trainings/{job_id}/events")
        assert events[-1][1] == "failed"

        with local_worker(broker.url, mnist_dir()):
            again = post(server, SMALL, "learner-killed")  # the failed job frees its owner
            assert again.status_code == 201, again.text
            done = wait_for(server, again.json()["id"], {"done", "failed"}, 120)
        assert done["status"] == "done"


def test_a_worker_shut_down_mid_job_ends_it_failed_in_words(
    broker: LocalRedis, weights_path: Path
) -> None:
    with local_server(weights_path, env=env_for(broker)) as server:
        with local_worker(broker.url, mnist_dir()) as worker:
            job_id = post(server, {**LONGER, "train_size": 20000}, "learner-term").json()["id"]
            wait_for(server, job_id, {"running"}, 30)
            worker.process.send_signal(signal.SIGTERM)
            worker.process.wait(timeout=20)
        ended = wait_for(server, job_id, {"failed", "done", "cancelled"}, 10)
        assert ended["status"] == "failed"
        assert "shut down" in ended["error"]


def test_the_queue_is_bounded_and_a_learner_holds_one_place(
    broker: LocalRedis, weights_path: Path
) -> None:
    """No worker: jobs wait. Two learners fill a queue of two; a third is told to come back."""
    env = env_for(broker, CONVSCOPE_MAX_QUEUED="2")
    with local_server(weights_path, env=env) as server:
        first, second = post(server, SMALL, "learner-first"), post(server, SMALL, "learner-second")
        assert [first.status_code, second.status_code] == [201, 201]
        assert [first.json()["queue_position"], second.json()["queue_position"]] == [1, 2]
        twice = post(server, SMALL, "learner-first")
        assert twice.status_code == 429
        assert "already have a training job" in twice.json()["detail"]
        full = post(server, SMALL, "learner-third")
        assert full.status_code == 429
        assert int(full.headers["retry-after"]) > 0
        assert "already waiting" in full.json()["detail"]
        gone = httpx.delete(f"{server.url}/api/v1/trainings/{first.json()['id']}")
        assert gone.json()["status"] == "cancelled"
        assert status(server, second.json()["id"])["queue_position"] == 1
        events = event_ids(f"{server.url}/api/v1/trainings/{second.json()['id']}/events", None, 2)
        assert events == [(1, "queued"), (2, "queued")]
        httpx.delete(f"{server.url}/api/v1/trainings/{second.json()['id']}")


def test_the_broker_away_refuses_training_in_words_keeps_predicting_and_recovers(
    weights_path: Path,
) -> None:
    if redis_server_path() is None:
        pytest.skip("the shared mode needs redis-server (Debian: apt-get install redis-server)")
    pixels = np.zeros((28, 28))
    pixels[6:22, 13:15] = 1.0
    with local_redis() as first:
        port, env = first.port, env_for(first)
        with local_server(weights_path, env=env) as server:
            assert post(server, SMALL, "learner-early").status_code == 201
            first.stop()
            refused = post(server, SMALL, "learner-late")
            assert refused.status_code == 503
            assert "broker cannot be reached" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            answer = httpx.post(f"{server.url}/api/v1/predict", json={"pixels": pixels.tolist()})
            assert answer.status_code == 200
            with local_redis(port=port):
                deadline = time.monotonic() + 10
                while (again := post(server, SMALL, "learner-late")).status_code != 201:
                    assert time.monotonic() < deadline, again.text
                    time.sleep(0.2)
