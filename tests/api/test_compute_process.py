"""The compute process against the compute threads: the same bytes for every kind of request and
error, the work really done in the child, and what happens when the child dies, has a bug,
cannot start again, or a job cannot travel.

Every app here says which it runs (`compute_process`), whatever the machine's CPU count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from PIL import Image

from server.api.app import create_app
from server.api.compute.dispatch import Compute
from server.api.compute.process import ComputeProcess, ComputeStartError
from server.api.compute.work import answer_predict
from server.api.schemas.predict import PredictRequest
from server.cnn import save_model
from server.cnn.architectures import mnist_cnn
from server.config import Settings
from server.inference import Predictor

WHERE = "/api/v1/predict"
EDITS = {
    "ablate": [{"layer": "conv1", "channels": [3, 7]}],
    "kernels": [{"layer": "conv1", "channel": 5, "weight": np.eye(3).tolist(), "bias": 0.3}],
}
WAIT_S = 30.0  # a bound on waiting for the child, not a synchronisation device


def compute_of(app: FastAPI) -> Compute:
    compute: Compute = app.state.compute
    return compute


def process_of(app: FastAPI) -> ComputeProcess:
    process = compute_of(app).process
    assert process is not None, "this app runs without a compute process"
    return process


def child_of(app: FastAPI) -> Any:
    """The running child's multiprocessing.Process."""
    child = process_of(app).child
    assert child is not None, "no child running"
    return child.process


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.01)


def on_loop(client: TestClient, function: Callable[..., Any], *args: Any) -> Any:
    """Awaits function(*args) on the app's event loop, as a route would (TimeoutError after
    WAIT_S: an answer handed to the wrong job leaves another waiting forever)."""
    portal = client.portal
    assert portal is not None, "inside the client's context"

    async def bounded() -> Any:
        return await asyncio.wait_for(function(*args), WAIT_S)

    return portal.call(bounded)


def computed(client: TestClient, app: FastAPI, work: Callable[..., Any], *args: Any) -> Any:
    """The app's Compute.run(work, *args) for the default model, as a route calls it."""
    return on_loop(client, partial(compute_of(app).run, model=None), work, *args)


@pytest.fixture(scope="module")
def process_app(make_settings: Callable[..., Settings]) -> FastAPI:
    return create_app(make_settings(compute_process=True))


@pytest.fixture(scope="module")
def process_client(process_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(process_app) as client:
        yield client


@pytest.fixture(scope="module")
def thread_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The reference: the same app and model with its work on compute threads."""
    with TestClient(create_app(make_settings(compute_process=False))) as client:
        yield client


def requests(kit: Any, digit_png: bytes, digit_pixels: np.ndarray) -> list[dict[str, Any]]:
    """httpx request arguments for every predict route, and for the errors its work can raise."""
    image, pixels = kit.b64(digit_png), digit_pixels.tolist()
    blank = kit.png_b64(Image.new("L", (60, 60), 255))
    tiff = kit.b64(kit.image_bytes(kit.draw_digit(1, size=64), "TIFF"))
    file = {"file": ("digit.png", digit_png, "image/png")}
    return [
        {"url": WHERE, "json": {"image": image, "activations": True, "encoding": encoding}}
        for encoding in ("uint8", "base64", "list")
    ] + [
        {"url": WHERE, "json": {"image": image, "activations": True, "saliency": True}},
        {"url": WHERE, "json": {"image": image, "steps": True}},
        {"url": WHERE, "json": {"pixels": pixels, "edits": EDITS, "target": 2}},
        {"url": f"{WHERE}/file?activations=true", "files": file},
        {"url": f"{WHERE}/file", "files": file, "data": {"edits": '{"ablate": []}'}},
        {"url": f"{WHERE}/batch", "json": {"images": [image, image]}},
        {"url": f"{WHERE}/batch", "json": {"pixels": [pixels] * 3}},
        # the errors the work raises, each with its own status
        {"url": WHERE, "json": {"image": blank}},  # 422: no digit
        {"url": WHERE, "json": {"image": "not base64!"}},  # 422
        {"url": WHERE, "json": {"image": tiff}},  # 415
        {"url": WHERE, "json": {"pixels": pixels, "model": "nobody"}},  # 404
        {
            "url": WHERE,
            "json": {"pixels": pixels, "edits": {"ablate": [{"layer": "conv1", "channels": [99]}]}},
        },  # 422: out of range
        {"url": f"{WHERE}/file", "files": file, "data": {"edits": "{nope"}},  # 422
        {"url": f"{WHERE}/batch", "json": {"pixels": [pixels] * 257}},  # 413
    ]


def comparable(kit: Any, response: httpx.Response | Response) -> tuple[int, Any]:
    """Status and body, without the stage timings that differ between two runs."""
    if isinstance(response, httpx.Response):
        body = response.json()
    else:
        body = json.loads(bytes(response.body))
    return response.status_code, kit.without_timings(body)


def test_every_answer_equals_the_compute_threads_answer(
    process_client: TestClient,
    thread_client: TestClient,
    kit: Any,
    digit_png: bytes,
    digit_pixels: np.ndarray,
) -> None:
    statuses = set()
    for case in requests(kit, digit_png, digit_pixels):
        mine, reference = process_client.post(**case), thread_client.post(**case)
        assert comparable(kit, mine) == comparable(kit, reference), case["url"]
        assert mine.headers["content-type"] == reference.headers["content-type"]
        statuses.add(mine.status_code)
    assert statuses == {200, 404, 413, 415, 422}, "the cases must cover every kind of answer"


def test_the_work_runs_in_the_child_not_in_the_server(
    process_app: FastAPI,
    process_client: TestClient,
    thread_client: TestClient,
    kit: Any,
    digit_png: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Breaking the network in the server's process breaks only the app without the child."""

    def broken(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("the server's own Predictor ran")

    monkeypatch.setattr(Predictor, "explain", broken)
    body = {"image": kit.b64(digit_png), "activations": True}
    assert process_client.post(WHERE, json=body).status_code == 200
    assert thread_client.post(WHERE, json=body).status_code == 500
    assert child_of(process_app).pid != os.getpid()


def test_a_training_jobs_model_stays_on_the_threads(
    process_client: TestClient, kit: Any, digit_pixels: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child holds only the model files; a name from a source (training:<id>) is the
    server's to answer, on its threads."""
    sent: list[object] = []
    run = ComputeProcess.run

    async def counting_run(self: ComputeProcess, work: Any, *args: Any) -> Any:
        sent.append(work)
        return await run(self, work, *args)

    monkeypatch.setattr(ComputeProcess, "run", counting_run)
    pixels = digit_pixels.tolist()
    answer = process_client.post(WHERE, json={"pixels": pixels, "model": "training:nope"})
    kit.assert_error(answer, 404, "nope")
    assert sent == []
    assert process_client.post(WHERE, json={"pixels": pixels}).status_code == 200
    assert sent == [answer_predict]


def broken_work(*args: object) -> None:
    """A route's work with a bug in it (the child imports this module by name, as pytest does)."""
    raise RuntimeError("a bug in the work")


def test_a_bug_in_the_child_is_a_500_logged_by_the_server(
    process_app: FastAPI, process_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="convscope"):
        response = computed(process_client, process_app, broken_work)
    assert response.status_code == 500
    assert response.body == b'{"detail":"internal error; it has been logged"}'
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError: a bug in the work" in logged, logged
    assert "broken_work" in logged, "the child's traceback reaches the server's log"


def explode() -> NoReturn:
    raise ValueError("this job cannot be unpickled")


class ArrivesBroken:
    """Pickles fine; unpickling it in the child raises."""

    def __reduce__(self) -> tuple[Callable[[], NoReturn], tuple[()]]:
        return explode, ()


def pixels_request(pixels: np.ndarray) -> PredictRequest:
    return PredictRequest.model_validate({"pixels": pixels.tolist(), "activations": True})


def test_jobs_that_cannot_travel_leave_every_other_answer_in_its_place(
    process_app: FastAPI,
    process_client: TestClient,
    thread_client: TestClient,
    kit: Any,
    digit_pixels: np.ndarray,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job the server cannot pickle never takes a place in line; one the child cannot unpickle
    gets a 500 and the child lives on; either way the next answer is the next request's."""
    pid = child_of(process_app).pid
    with pytest.raises(AttributeError, match="pickle"):
        computed(process_client, process_app, answer_predict, lambda: None)
    with caplog.at_level(logging.ERROR, logger="convscope"):
        failed = computed(process_client, process_app, answer_predict, ArrivesBroken())
    assert failed.status_code == 500
    assert "this job cannot be unpickled" in caplog.text
    assert child_of(process_app).pid == pid
    request = pixels_request(digit_pixels)
    answer = computed(process_client, process_app, answer_predict, request)
    reference = thread_client.post(WHERE, json=request.model_dump(exclude_none=True))
    assert comparable(kit, answer) == comparable(kit, reference)


def test_a_cancelled_job_leaves_every_other_answer_in_its_place(
    process_app: FastAPI,
    process_client: TestClient,
    thread_client: TestClient,
    kit: Any,
    digit_pixels: np.ndarray,
) -> None:
    compute = compute_of(process_app)
    first, second = pixels_request(digit_pixels), pixels_request(digit_pixels[::-1].copy())

    async def cancel_one_then_ask_again() -> Response:
        job = asyncio.create_task(compute.run(answer_predict, first, model=None))
        await asyncio.sleep(0)  # the job is sent
        job.cancel()
        return await compute.run(answer_predict, second, model=None)

    answer = on_loop(process_client, cancel_one_then_ask_again)
    reference = thread_client.post(WHERE, json=second.model_dump(exclude_none=True))
    assert comparable(kit, answer) == comparable(kit, reference)
    assert not process_of(process_app).child.jobs  # type: ignore[union-attr]


def test_a_killed_child_fails_its_jobs_with_503_and_the_next_job_starts_another(
    make_settings: Callable[..., Settings], digit_pixels: np.ndarray
) -> None:
    body = {"pixels": digit_pixels.tolist()}
    app = create_app(make_settings(compute_process=True))
    with TestClient(app) as client:
        first = child_of(app)
        os.kill(first.pid, signal.SIGSTOP)  # holds the job the next request sends
        answers: list[httpx.Response] = []
        poster = threading.Thread(target=lambda: answers.append(client.post(WHERE, json=body)))
        poster.start()
        wait_for(lambda: bool(process_of(app).child.jobs), "the job reaches the child")  # type: ignore[union-attr]
        os.kill(first.pid, signal.SIGKILL)
        poster.join(WAIT_S)
        assert answers[0].status_code == 503
        assert answers[0].headers["retry-after"] == "1"
        assert "compute process stopped" in answers[0].json()["detail"]
        after = client.post(WHERE, json=body)
        assert after.status_code == 200, after.text
        second = child_of(app)
        assert second.pid != first.pid
    assert second.exitcode == 0, "shutdown ends the child cleanly"
    assert process_of(app).child is None


def test_a_child_that_cannot_start_again_is_a_503_until_one_can(
    make_settings: Callable[..., Settings],
    weights_path: Path,
    tmp_path: Path,
    digit_pixels: np.ndarray,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a crash the new child reads the weights file again: while it is broken, or holds
    other weights than the server serves, predictions get 503 and no process is left behind."""
    served = tmp_path / "served.npz"
    shutil.copy(weights_path, served)
    kept = served.read_bytes()
    other = tmp_path / "other.npz"
    save_model(other, mnist_cnn(seed=1), {})
    body = {"pixels": digit_pixels.tolist()}
    app = create_app(make_settings(weights=served, compute_process=True))
    with TestClient(app) as client:
        for replacement, why in [(b"not an npz", "served.npz"), (other.read_bytes(), "other")]:
            served.write_bytes(kept)
            assert client.post(WHERE, json=body).status_code == 200  # a child that started
            child = child_of(app)
            others = set(compute_children()) - {child.pid}
            child.kill()
            wait_for(lambda: process_of(app).child is None, "the server sees the child end")
            served.write_bytes(replacement)
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="convscope"):
                answer = client.post(WHERE, json=body)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            assert "could not start" in answer.json()["detail"]
            assert why in caplog.text, "the log says why"
            assert process_of(app).child is None
            assert set(compute_children()) == others, "the child that failed lingers"


def compute_children() -> list[int | None]:
    """The pids of this test process's live compute processes (active_children reaps the rest)."""
    return [p.pid for p in multiprocessing.active_children() if p.name == "convscope-compute"]


def test_a_child_that_cannot_load_the_models_says_why(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz")
    process = ComputeProcess(make_settings(weights=broken), {"broken": "0" * 64})
    with pytest.raises(ComputeStartError, match=r"did not start: .*broken\.npz"):
        asyncio.run(process.start())
    assert process.child is None
