"""Sixteen requests at once, one app: each thread gets its own digit's answer, exactly the one
the same request gets alone (label, probabilities, every activation, mask and saliency)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

THREADS = 16
TIMEOUT_S = 120  # a bound on the whole run, not a synchronisation device


@pytest.fixture(scope="module")
def digits(kit: Any, request: pytest.FixtureRequest) -> list[str]:
    """Sixteen different digits as base64 PNG: MNIST test images when MNIST_DIR is set,
    otherwise digits drawn with Pillow at different sizes."""
    if os.environ.get("MNIST_DIR"):
        images, _ = request.getfixturevalue("mnist_test")
        chosen = np.random.default_rng(16).choice(len(images), THREADS, replace=False)
        pictures = [
            kit.image_bytes(_upscaled(images[i], 112)) for i in sorted(int(i) for i in chosen)
        ]
    else:
        pictures = [
            kit.image_bytes(kit.draw_digit(k % 10, size=100 + 10 * k, ink=0, paper=255))
            for k in range(THREADS)
        ]
    return [kit.b64(p) for p in pictures]


def _upscaled(image: np.ndarray, side: int) -> Image.Image:
    return Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)


def request_body(image: str) -> dict[str, Any]:
    return {"image": image, "activations": True, "saliency": True, "encoding": "base64"}


def answer(client: TestClient, image: str) -> dict[str, Any]:
    response = client.post("/api/v1/predict", json=request_body(image))
    assert response.status_code == 200, response.text
    return {key: value for key, value in response.json().items() if key != "timings_ms"}


def test_sixteen_concurrent_requests_each_get_their_own_answer(
    client: TestClient, digits: list[str]
) -> None:
    serial = [answer(client, image) for image in digits]
    inputs = {str(s["input"]["data"]) for s in serial}
    assert len(inputs) == THREADS, "the digits must differ for the test to mean anything"

    barrier = threading.Barrier(THREADS, timeout=TIMEOUT_S)

    def worker(index: int) -> dict[str, Any]:
        barrier.wait()  # all sixteen post at the same moment
        return answer(client, digits[index])

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(worker, i) for i in range(THREADS)]
        concurrent = [future.result(timeout=TIMEOUT_S) for future in futures]

    for index, (alone, together) in enumerate(zip(serial, concurrent, strict=True)):
        assert together["label"] == alone["label"], index
        assert together["probabilities"] == alone["probabilities"], index
        assert together["input"] == alone["input"], index
        assert together["saliency"] == alone["saliency"], index
        assert together["target"] == alone["target"], index
        for mine, reference in zip(together["layers"], alone["layers"], strict=True):
            assert mine == reference, (index, reference["name"])


def test_a_prediction_takes_one_thread_pool_hop(
    client: TestClient, kit: Any, digit_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's own work goes to Compute.run once (to the compute process or a compute
    thread); the dependencies that only look up app state run on the event loop, not in
    FastAPI's pool (a hop costs ~40-50 us of CPU)."""
    from server.api.compute.dispatch import Compute

    pool_hops: list[object] = []
    compute_hops: list[object] = []
    run_sync, run = anyio.to_thread.run_sync, Compute.run

    async def counting_run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        pool_hops.append(func)
        return await run_sync(func, *args, **kwargs)

    async def counting_run(self: Compute, work: Any, *args: Any, **kwargs: Any) -> Any:
        compute_hops.append(work)
        return await run(self, work, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    monkeypatch.setattr(Compute, "run", counting_run)
    body = {"image": kit.b64(digit_png), "activations": True, "encoding": "uint8"}
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 200, response.text
    assert (len(pool_hops), len(compute_hops)) == (0, 1), (pool_hops, compute_hops)


@pytest.mark.parametrize("limit", [1, 3])
def test_no_more_predictions_run_at_once_than_compute_threads(
    make_settings: Any, digits: list[str], monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Sixteen clients at once, no compute process; the model work itself counts how many
    threads are inside it."""
    from server.api.app import create_app
    from server.inference import Predictor

    inside, most = 0, 0
    lock = threading.Lock()
    explain = Predictor.explain

    def counting_explain(self: Predictor, *args: Any, **kwargs: Any) -> Any:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            threading.Event().wait(0.02)  # long enough for the others to pile up
            return explain(self, *args, **kwargs)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(Predictor, "explain", counting_explain)
    barrier = threading.Barrier(THREADS, timeout=TIMEOUT_S)
    with TestClient(
        create_app(make_settings(compute_process=False, compute_threads=limit))
    ) as client:

        def worker(index: int) -> dict[str, Any]:
            barrier.wait()
            return answer(client, digits[index])

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [pool.submit(worker, i) for i in range(THREADS)]
            answers = [future.result(timeout=TIMEOUT_S) for future in futures]
    assert len(answers) == THREADS
    assert most == limit, f"{most} predictions ran at once; the limit is {limit}"
