"""Crowds that must not take the server down, over real sockets against `convscope serve`: a
class following a running job's event stream, and a class asking for counterfactuals at once.
Each keeps /healthz fast and predictions answering, and past its own cap gets 503 in words."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from server.cli.local_server import LocalServer, local_server

pytestmark = pytest.mark.slow

STREAMS = 500
HEALTH_P99_S = 0.100  # the bound: a Kubernetes liveness probe waits 1 s by default
PIXELS = np.zeros((28, 28))
PIXELS[6:22, 13:15] = 1.0


def mnist_dir() -> str:
    directory = os.environ.get("MNIST_DIR")
    if not directory:
        pytest.skip("MNIST_DIR is not set; a training job needs MNIST (CI: ../shared/mnist)")
    return directory


def health_p99(url: str, samples: int = 300) -> float:
    """The 99th percentile of /healthz over `samples` requests, one after another."""
    times = []
    with httpx.Client(timeout=10) as client:
        for _ in range(samples):
            started = time.perf_counter()
            assert client.get(f"{url}/healthz").status_code == 200
            times.append(time.perf_counter() - started)
    return float(np.quantile(times, 0.99))


def predictions_answer(url: str, count: int = 10) -> list[int]:
    body = {"pixels": PIXELS.tolist(), "activations": True}
    with httpx.Client(timeout=30) as client:
        return [client.post(f"{url}/api/v1/predict", json=body).status_code for _ in range(count)]


class Followers:
    """`count` event streams held open on raw sockets, read as fast as they come, in a thread
    of their own (one event loop): what a class of browsers on one job costs the server."""

    def __init__(self, url: str, path: str, count: int) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.path, self.count = path, count
        self.statuses: list[bytes] = []
        self.received = 0
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Followers:
        self.thread.start()
        assert self.ready.wait(60), "the streams did not open"
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)

    async def _follow(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, int(self.port))
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        self.statuses.append((await reader.readline()).split(b" ")[1])
        if len(self.statuses) == self.count:
            self.ready.set()
        while not self.stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                continue
            if not chunk:
                break
            self.received += len(chunk)
        writer.close()

    async def _run(self) -> None:
        tasks = []
        for _ in range(self.count):  # opened in a steady trickle, as a class arrives
            tasks.append(asyncio.create_task(self._follow()))
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def server(weights_path: Path) -> Iterator[LocalServer]:
    env = {
        "CONVSCOPE_MNIST_DIR": mnist_dir(),
        "CONVSCOPE_MNIST_DOWNLOAD": "false",
        "CONVSCOPE_MAX_STREAMS": str(STREAMS),
        "CONVSCOPE_MAX_CONCURRENCY": "64",
    }
    with local_server(weights_path, env=env) as running:
        yield running


def test_a_class_on_one_running_jobs_stream_leaves_the_server_answering(
    server: LocalServer,
) -> None:
    started = httpx.post(f"{server.url}/api/v1/trainings", json={"seed": 4})  # a long job
    assert started.status_code == 201, started.text
    job_id = started.json()["id"]
    path = f"/api/v1/trainings/{job_id}/events"
    try:
        with Followers(server.url, path, STREAMS) as followers:
            assert followers.statuses.count(b"200") == STREAMS
            one_more = httpx.get(server.url + path, timeout=10)
            assert one_more.status_code == 503
            assert f"{STREAMS} event streams" in one_more.json()["detail"]
            assert one_more.headers["retry-after"] == "1"
            assert predictions_answer(server.url) == [200] * 10  # the streams hold no places
            p99 = health_p99(server.url)
            assert p99 < HEALTH_P99_S, f"/healthz p99 {p99 * 1000:.0f} ms with {STREAMS} streams"
            before = followers.received
            time.sleep(1.0)
            assert followers.received > before, "the streams are still being fed"
    finally:
        httpx.delete(f"{server.url}/api/v1/trainings/{job_id}")


def test_a_class_asking_for_counterfactuals_at_once_leaves_the_server_answering(
    server: LocalServer,
) -> None:
    body = {"pixels": PIXELS.tolist(), "target": 7}
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(httpx.post(f"{server.url}/api/v1/counterfactual", json=body, timeout=120))

    askers = [threading.Thread(target=ask) for _ in range(64)]
    for asker in askers:
        asker.start()
    time.sleep(0.5)  # all 64 in: the lane holds its few, the rest are refused at once
    p99 = health_p99(server.url, samples=200)
    predicted = predictions_answer(server.url)
    for asker in askers:
        asker.join(120)
    statuses = [answer.status_code for answer in answers]
    assert p99 < HEALTH_P99_S, f"/healthz p99 {p99 * 1000:.0f} ms under 64 counterfactuals"
    assert predicted == [200] * 10
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 503}
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused, "past the lane's bound, 503"
    assert all(int(answer.headers["retry-after"]) > 0 for answer in refused)
    assert "searches are running or waiting" in refused[0].json()["detail"]
    assert statistics.mean(len(a.content) for a in answers if a.status_code == 200) > 100
