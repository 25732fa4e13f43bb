"""/api/v1/trainings against real jobs on 1,000 MNIST images, through a real server (uvicorn),
so the event stream is timed as a browser sees it: zstd accepted, as Chrome asks.

One contract, two modes: every test of a `server` runs against the embedded mode (jobs in the
server's process) and the shared mode (a real redis-server, a `convscope worker`, the server
relaying through the broker)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from server.api.app import create_app
from server.cli.local_broker import local_redis, local_worker, redis_server_path
from server.cli.local_server import LocalServer, local_server
from server.cnn import load_model
from server.synth import stroke_set
from server.training.jobs import local as training_manager
from server.training.mnist import MnistError, load_mnist
from tests.api.sse import sse_events

SMALL = {"train_size": 1000, "batch_size": 64, "seed": 1}  # 16 steps
CHROME = {"Accept-Encoding": "gzip, deflate, br, zstd", "Accept": "text/event-stream"}


def mnist_dir() -> str:
    directory = os.environ.get("MNIST_DIR")
    if not directory:
        pytest.skip("MNIST_DIR is not set; training jobs need MNIST (CI: ../shared/mnist)")
    return directory


@dataclass
class Event:
    id: int
    name: str
    data: dict[str, Any]
    at: float  # seconds after the stream was opened


@dataclass
class Stream:
    events: list[Event] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def read_events(url: str, headers: dict[str, str] | None = None, limit: float = 600) -> Stream:
    """Every event of a stream until it ends, each stamped with when it arrived."""
    stream = Stream()
    start = time.monotonic()
    with httpx.stream("GET", url, headers={**CHROME, **(headers or {})}, timeout=limit) as answer:
        assert answer.status_code == 200, answer.read()
        stream.headers = dict(answer.headers)
        for fields in sse_events(answer.iter_lines()):
            data = json.loads(fields["data"])
            at = time.monotonic() - start
            stream.events.append(Event(int(fields["id"]), fields["event"], data, at))
    return stream


def kernels(event: Event) -> np.ndarray:
    (packed,) = event.data["kernels"].values()
    raw = np.frombuffer(base64.b64decode(packed["data"]), dtype="<f4")
    return raw.reshape(packed["shape"])


@dataclass
class Setup:
    """A server, and the process its jobs' own processes are children of."""

    server: LocalServer
    mode: str
    trainer_pid: int  # the server (embedded) or the worker (shared)


@pytest.fixture(scope="module", params=["embedded", "shared"])
def setup(request: pytest.FixtureRequest, weights_path: Path) -> Iterator[Setup]:
    env = {"CONVSCOPE_MNIST_DIR": mnist_dir(), "CONVSCOPE_MNIST_DOWNLOAD": "false"}
    if request.param == "embedded":
        with local_server(weights_path, env=env) as running:
            yield Setup(running, "embedded", running.process.pid)
        return
    if redis_server_path() is None:
        pytest.skip("the shared mode needs redis-server (Debian: apt-get install redis-server)")
    with (
        local_redis() as broker,
        local_worker(broker.url, mnist_dir()) as worker,
        local_server(weights_path, env={**env, "CONVSCOPE_BROKER_URL": broker.url}) as running,
    ):
        yield Setup(running, "shared", worker.process.pid)


@pytest.fixture(scope="module")
def server(setup: Setup) -> LocalServer:
    return setup.server


@pytest.fixture(scope="module")
def finished(server: LocalServer) -> tuple[str, Stream]:
    """One small job followed from start to end."""
    answer = httpx.post(f"{server.url}/api/v1/trainings", json=SMALL)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["status"], body["queue_position"]) in {("running", 0), ("queued", 1)}
    assert body["events"] == f"/api/v1/trainings/{body['id']}/events"
    return body["id"], read_events(server.url + body["events"])


def test_the_stream_tells_the_whole_run_in_order(finished: tuple[str, Stream]) -> None:
    _, stream = finished
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in stream.headers  # never compressed, even with zstd accepted
    ids = [e.id for e in stream.events]
    assert ids == sorted(ids)  # a repeated progress keeps the last id sent
    assert sorted(set(ids)) == list(range(1, ids[-1] + 1))
    assert stream.events[0].at < 1.0
    names = [e.name for e in stream.events]
    waited = names.index("progress")  # `queued` events only before the job starts
    assert set(names[:waited]) <= {"queued"}
    assert "queued" not in names[waited:]
    events = stream.events[waited:]
    assert [e.name for e in events].count("done") == 1
    assert events[-1].name == "done"
    gaps = np.diff([e.at for e in events])
    assert gaps.max() < 1.0, f"longest silence {gaps.max():.2f} s"  # promised: 0.5 s
    progress = [e for e in events if e.name == "progress" and e.data["loss"] is not None]
    steps = [e.data["step"] for e in progress]
    assert steps == sorted(steps)
    assert steps[-1] == 16
    assert progress[-1].data["loss"] < 0.7 * progress[0].data["loss"]
    first, last = kernels(events[0]), kernels(progress[-1])
    assert first.shape == (32, 1, 3, 3)
    assert np.abs(last - first).max() > 1e-3, "the kernels learnt something"
    evaluations = [e.data for e in events if e.name == "evaluation"]
    assert len(evaluations) >= 4
    assert evaluations[-1]["val_accuracy"] > 0.6  # chance is 0.1
    done = events[-1].data
    assert done["steps"] == 16
    assert 0.6 < done["test_accuracy"] <= 1
    assert done["seconds"] > 0


def test_status_and_snapshots_of_a_finished_job(server: LocalServer, finished: Any) -> None:
    job_id, stream = finished
    status = httpx.get(f"{server.url}/api/v1/trainings/{job_id}").json()
    assert status["status"] == "done"
    assert status["step"] == status["steps_total"] == 16
    assert status["config"]["train_size"] == 1000
    assert status["error"] is None
    snapshots = httpx.get(f"{server.url}/api/v1/trainings/{job_id}/snapshots").json()
    assert [s["step"] for s in snapshots["snapshots"]] == list(range(1, 17))  # 16 <= 32: all
    by_step = {
        e.data["step"]: e.data["val_accuracy"] for e in stream.events if e.name == "evaluation"
    }
    for snapshot in snapshots["snapshots"]:
        assert snapshot["val_accuracy"] == by_step[snapshot["step"]]


def test_resuming_with_last_event_id_sends_only_later_events(
    server: LocalServer, finished: Any
) -> None:
    job_id, stream = finished
    last = stream.events[-1].id - 2
    url = f"{server.url}/api/v1/trainings/{job_id}/events"
    resumed = read_events(url, {"Last-Event-ID": str(last)})
    assert [e.id for e in resumed.events] == [last + 1, last + 2]
    assert resumed.events[-1].data == stream.events[-1].data


def test_the_weights_download_loads_back_and_scores_as_reported(
    server: LocalServer, finished: Any
) -> None:
    job_id, stream = finished
    answer = httpx.get(f"{server.url}/api/v1/trainings/{job_id}/weights")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    loaded = load_model(_saved(answer.content))
    data = load_mnist(mnist_dir())
    logits = loaded.model.forward((data.test_images[..., None] / 255.0).astype(np.float32))
    accuracy = float((logits.argmax(axis=1) == data.test_labels).mean())
    assert accuracy == stream.events[-1].data["test_accuracy"] == loaded.metadata["test_accuracy"]


def _saved(content: bytes) -> Path:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"convscope-test-{os.getpid()}.npz"
    path.write_bytes(content)
    return path


def test_predict_with_the_jobs_weights_and_a_snapshot(server: LocalServer, finished: Any) -> None:
    job_id, _ = finished
    pixels = np.zeros((28, 28))
    pixels[6:22, 13:15] = 1.0  # a 1
    loaded = load_model(
        _saved(httpx.get(f"{server.url}/api/v1/trainings/{job_id}/weights").content)
    )
    expected = loaded.model.forward(pixels[None, ..., None].astype(np.float32))[0]
    expected = np.exp(expected - expected.max()) / np.exp(expected - expected.max()).sum()

    def predict(model: str) -> httpx.Response:
        body = {"pixels": pixels.tolist(), "model": model}
        return httpx.post(f"{server.url}/api/v1/predict", json=body)

    final = predict(f"training:{job_id}").json()
    np.testing.assert_allclose(final["probabilities"], expected, atol=1e-5)
    early = predict(f"training:{job_id}@1").json()
    assert not np.allclose(early["probabilities"], final["probabilities"], atol=1e-3)
    assert predict(f"training:{job_id}@2").json()["model"] != early["model"]
    assert predict(f"training:{job_id}@16").json()["probabilities"] == final["probabilities"]
    card = httpx.get(f"{server.url}/api/v1/model", params={"model": f"training:{job_id}"})
    assert card.status_code == 200
    for wrong in (f"training:{job_id}@x", "training:nope"):
        answer = predict(wrong)
        assert answer.status_code == 404
        assert wrong.split(":")[1] in answer.json()["detail"]


def server_children(pid: int) -> set[int]:
    """Processes whose parent is `pid`, from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                children.add(int(entry.name))
    return children


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_second_job_waits_in_line_and_delete_stops_either(setup: Setup, finished: Any) -> None:
    """One job a learner: the same client is refused; another waits its turn, announced as
    `queued`; DELETE takes a waiting job out at once and stops a running one within 2 s."""
    url = f"{setup.server.url}/api/v1/trainings"
    first_learner, second_learner = {"X-Client-Id": "learner-one"}, {"X-Client-Id": "learner-two"}
    before = server_children(setup.trainer_pid)
    started = httpx.post(url, json={"seed": 2}, headers=first_learner)  # all 59,000 images
    assert started.status_code == 201, started.text
    job_id = started.json()["id"]
    again = httpx.post(url, json=SMALL, headers=first_learner)
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) > 0
    assert "already have a training job" in again.json()["detail"]
    assert job_id in again.json()["detail"]
    deadline = time.monotonic() + 20
    while httpx.get(f"{url}/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the first job never started"
        time.sleep(0.1)

    waiting = httpx.post(url, json=SMALL, headers=second_learner)
    assert waiting.status_code == 201, waiting.text
    assert (waiting.json()["status"], waiting.json()["queue_position"]) == ("queued", 1)
    waiting_id = waiting.json()["id"]
    status = httpx.get(f"{url}/{waiting_id}").json()
    assert (status["status"], status["queue_position"]) == ("queued", 1)
    clock = time.monotonic()
    gone = httpx.delete(f"{url}/{waiting_id}")
    assert time.monotonic() - clock < 0.5
    assert gone.json()["status"] == "cancelled"
    told = read_events(f"{url}/{waiting_id}/events", limit=10).events
    assert [(e.name, e.data) for e in told] == [
        ("queued", {"position": 1}),
        ("cancelled", {"step": 0}),
    ]

    spawned = server_children(setup.trainer_pid) - before
    assert spawned, "the job runs in a process of its own"
    time.sleep(2)  # into the training proper
    clock = time.monotonic()
    stopped = httpx.delete(f"{url}/{job_id}")
    elapsed = time.monotonic() - clock
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "cancelled"
    assert elapsed < 2.0, f"DELETE took {elapsed:.2f} s"
    assert not any(alive(pid) for pid in spawned - {p for p in spawned if _tracker(p)})
    stream = read_events(f"{url}/{job_id}/events")
    assert stream.events[-1].name == "cancelled"


def _tracker(pid: int) -> bool:
    """multiprocessing's resource tracker: one per server, not per job."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_metrics_count_a_stream_once_and_nothing_is_left_in_progress(server: LocalServer) -> None:
    text = httpx.get(f"{server.url}/metrics").text
    assert "convscope_http_requests_in_progress 1.0" in text  # this request alone
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("convscope_http_requests_total")
        and 'route="/api/v1/trainings/{job_id}/events"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2


def test_a_server_shutdown_stops_its_job_and_leaves_no_process(weights_path: Path) -> None:
    env = {"CONVSCOPE_MNIST_DIR": mnist_dir(), "CONVSCOPE_MNIST_DOWNLOAD": "false"}
    with local_server(weights_path, env=env) as running:
        assert httpx.post(f"{running.url}/api/v1/trainings", json={}).status_code == 201
        children = server_children(running.process.pid)
        assert children
        with httpx.stream("GET", f"{running.url}/api/v1/trainings/x/events") as answer:
            assert answer.status_code == 404  # an id this process never had: at once
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in children)


# --- without a job: the refusals ----------------------------------------------------------


def test_switched_off_gives_403(make_settings: Any) -> None:
    with TestClient(create_app(make_settings(training=False))) as client:
        answer = client.post("/api/v1/trainings", json={})
    assert answer.status_code == 403
    assert "CONVSCOPE_TRAINING" in answer.json()["detail"]


def test_no_mnist_and_no_download_gives_503_saying_how(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(mnist_dir=tmp_path, mnist_download=False)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/api/v1/trainings")
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert str(tmp_path) in detail
    assert "CONVSCOPE_MNIST_DIR" in detail


def test_no_mnist_and_a_failed_download_gives_503_saying_how(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline: the download is tried once, in the request, and its failure is said in words
    (not a 201 for a job that can only fail)."""
    tried = []

    def offline(directory: Path, show_progress: bool = True) -> Path:
        tried.append(directory)
        raise MnistError("could not download train-images-idx3-ubyte: no network")

    monkeypatch.setattr(training_manager, "download_mnist", offline)
    settings = make_settings(mnist_dir=tmp_path, mnist_download=True)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/api/v1/trainings")
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    for words in ("could not be downloaded", "no network", str(tmp_path), "CONVSCOPE_MNIST_DIR"):
        assert words in detail
    assert tried == [tmp_path]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"epochs": 6}, "epochs"),
        ({"train_size": 999}, "train_size"),
        ({"batch_size": 8}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"architecture": "resnet"}, "architecture"),
        ({"seed": -1}, "seed"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_fields_give_422_naming_them(client: TestClient, body: dict, field: str) -> None:
    answer = client.post("/api/v1/trainings", json=body)
    assert answer.status_code == 422
    assert field in answer.json()["detail"]


@pytest.mark.parametrize("path", ["", "/events", "/snapshots", "/weights"])
def test_an_unknown_job_is_404_at_once(client: TestClient, path: str) -> None:
    answer = client.get(f"/api/v1/trainings/nope{path}")
    assert answer.status_code == 404
    assert "another worker" in answer.json()["detail"]
    assert client.delete("/api/v1/trainings/nope").status_code == 404


# --- teach it: a served model fine-tuned on a learner's drawings ----------------------------


def teach_body(count: int = 20, steps: int = 30) -> dict[str, Any]:
    """`count` stroke digits (not MNIST), two of each, as pixels, and their labels."""
    drawn = stroke_set(count, seed=77, via_png=False)
    examples = [
        {"pixels": np.round(image, 4).tolist(), "label": int(label)}
        for image, label in zip(drawn.images, drawn.labels, strict=True)
    ]
    return {"kind": "finetune", "base_model": "untrained", "examples": examples, "steps": steps}


def test_a_fine_tune_teaches_the_examples_and_its_model_reads_by_name(setup: Setup) -> None:
    """The served (untrained) model taught 20 drawings: they are read better after than
    before, every layer moved and the first filters are ranked by it, and the taught model
    answers by name; its status says what it was asked, without the drawings."""
    url = setup.server.url
    created = httpx.post(
        f"{url}/api/v1/trainings", json=teach_body(), headers={"X-Client-Id": "teacher-1"}
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    events = read_events(f"{url}/api/v1/trainings/{job_id}/events").events
    assert events[-1].name == "done", events[-1]
    evaluations = [e.data for e in events if e.name == "evaluation"]
    assert all(0 <= e["examples_accuracy"] <= 1 for e in evaluations)
    done = events[-1].data
    right = lambda rows: sum(r["label"] == r["predicted"] for r in rows)  # noqa: E731
    assert right(done["examples_after"]) > right(done["examples_before"])
    assert [r["label"] for r in done["examples_after"]] == [
        e["label"] for e in teach_body()["examples"]
    ]
    assert 0 <= done["base_test_accuracy"] <= 1
    assert 0 <= done["test_accuracy"] <= 1
    changed = done["changed"]
    assert set(changed["layers"]) >= {"conv1.weight", "fc2.weight"}
    assert all(value > 0 for value in changed["layers"].values())
    ranked = changed["filters"]["ranked"]
    assert changed["filters"]["layer"] == "conv1"
    assert len(ranked) == 32
    assert [v for _, v in ranked] == sorted((v for _, v in ranked), reverse=True)
    status = httpx.get(f"{url}/api/v1/trainings/{job_id}").json()
    assert status["config"] == {
        "kind": "finetune",
        "base_model": "untrained",
        "examples": 20,
        "steps": 30,
        "learning_rate": 0.001,
        "seed": 0,
    }
    answer = httpx.post(
        f"{url}/api/v1/predict",
        json={"pixels": teach_body()["examples"][0]["pixels"], "model": f"training:{job_id}"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"base_model": "nope"}, 404, "no served model named 'nope'"),
        ({"base_model": "training:abc"}, 404, "no served model"),
        ({"examples": []}, 422, "examples"),
        ({"epochs": 2}, 422, "epochs"),
        ({"steps": 5}, 422, "steps"),
        ({"learning_rate": 0.5}, 422, "learning_rate"),
    ],
)
def test_a_fine_tune_is_refused_in_words(
    client: TestClient, change: dict[str, Any], status: int, words: str
) -> None:
    body = {**teach_body(count=2), **change}
    body["base_model"] = change.get("base_model", client.get("/api/v1/models").json()[0]["name"])
    answer = client.post("/api/v1/trainings", json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]


@pytest.mark.parametrize(
    ("example", "words"),
    [
        ({"pixels": [[0.0] * 28] * 28, "label": 10}, "examples.1.label"),
        ({"image": "not base64!", "label": 3}, "examples[1].image: not valid base64"),
        ({"image": "", "label": 3}, "examples[1]"),
        ({"label": 3}, "exactly one of"),
    ],
)
def test_a_bad_example_is_a_422_naming_its_index(
    client: TestClient, example: dict[str, Any], words: str
) -> None:
    body = teach_body(count=1)
    body["base_model"] = client.get("/api/v1/models").json()[0]["name"]
    body["examples"].append(example)
    answer = client.post("/api/v1/trainings", json=body)
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"]


def test_an_example_with_no_digit_is_a_422_naming_its_index(client: TestClient, kit: Any) -> None:
    body = teach_body(count=2)
    body["base_model"] = client.get("/api/v1/models").json()[0]["name"]
    blank = kit.png_b64(Image.new("L", (64, 64), 255))
    body["examples"].insert(1, {"image": blank, "label": 4})
    answer = client.post("/api/v1/trainings", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("examples[1]: ")
