"""GET /metrics: the Prometheus text format, read back with prometheus_client's parser.

Counts are compared as differences between two scrapes, so requests made elsewhere in the
session do not matter. The multi-worker test runs `convscope serve --workers 2` and checks
that whichever worker answers a scrape reports every worker's requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from server.api.app import create_app
from server.cli.local_server import local_server
from server.config import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
WEIGHTS_ROUTE = "/api/v1/model/layers/{name}/weights"


def parse(text: str) -> Samples:
    """{(sample name, labels): value} for every sample in the exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def metrics_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as client:
        yield client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def test_requests_are_counted_by_route_template_not_raw_path(metrics_client: TestClient) -> None:
    before = scrape(metrics_client)
    for layer in ("conv1", "fc2", "conv9"):
        metrics_client.get(f"/api/v1/model/layers/{layer}/weights")
    metrics_client.get("/api/v1/no-such-route")
    metrics_client.get("/api/v1/other-missing-route")
    after = scrape(metrics_client)
    count = "convscope_http_requests_total"
    ok = {"method": "GET", "route": WEIGHTS_ROUTE, "status": "200"}
    missing = {"method": "GET", "route": WEIGHTS_ROUTE, "status": "404"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, count, **ok) - value(before, count, **ok) == 2
    assert value(after, count, **missing) - value(before, count, **missing) == 1
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 2
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(route and ("conv1" in route or "no-such" in route) for route in routes)


def test_static_files_and_odd_methods_keep_the_labels_few(metrics_client: TestClient) -> None:
    for path in ("/", "/css/app.css", "/js/main.js", "/nothing.js"):
        metrics_client.get(path)
    metrics_client.request("BREW", "/healthz")
    samples = scrape(metrics_client)
    count = "convscope_http_requests_total"
    assert value(samples, count, method="GET", route="/{path}", status="200") >= 3
    assert value(samples, count, method="GET", route="/{path}", status="404") >= 1
    assert value(samples, count, method="other", route="/healthz", status="405") >= 1


def test_latency_histogram_counts_every_request_of_a_route(metrics_client: TestClient) -> None:
    before = scrape(metrics_client)
    for _ in range(5):
        metrics_client.get("/api/v1/model")
    after = scrape(metrics_client)
    latency = "convscope_http_request_duration_seconds"
    labels = {"method": "GET", "route": "/api/v1/model"}
    assert value(after, f"{latency}_count", **labels) - value(
        before, f"{latency}_count", **labels
    ) == pytest.approx(5)
    buckets = sorted(
        (float(dict(lab)["le"]), v)
        for (name, lab), v in after.items()
        if name == f"{latency}_bucket" and dict(lab).get("route") == "/api/v1/model"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "bucket counts must grow with le"
    assert buckets[-1] == (float("inf"), value(after, f"{latency}_count", **labels))
    assert value(after, f"{latency}_sum", **labels) > 0


def test_inference_time_is_recorded_per_kind(
    metrics_client: TestClient, digit_pixels: np.ndarray
) -> None:
    before = scrape(metrics_client)
    pixels = digit_pixels.tolist()
    for _ in range(3):
        response = metrics_client.post("/api/v1/predict", json={"pixels": pixels})
        assert response.status_code == 200
    batch = metrics_client.post("/api/v1/predict/batch", json={"pixels": [pixels] * 4})
    assert batch.status_code == 200
    after = scrape(metrics_client)
    name = "convscope_inference_seconds"
    for kind, expected in (("explain", 3), ("predict", 1)):
        count = value(after, f"{name}_count", kind=kind) - value(before, f"{name}_count", kind=kind)
        assert count == expected, kind
        assert value(after, f"{name}_sum", kind=kind) > value(before, f"{name}_sum", kind=kind)


def test_requests_in_progress_counts_the_scrape_itself(metrics_client: TestClient) -> None:
    assert value(scrape(metrics_client), "convscope_http_requests_in_progress") == 1


def test_model_info_names_the_weights_and_their_hash(
    metrics_client: TestClient, weights_path: Path
) -> None:
    samples = scrape(metrics_client)
    info = [
        (dict(labels), v) for (name, labels), v in samples.items() if name == "convscope_model_info"
    ]
    sha256 = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    assert info == [({"name": weights_path.stem, "sha256": sha256}, 1.0)]


def test_two_apps_in_one_process_count_apart(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings())) as first:
        first.get("/healthz")
        first.get("/healthz")
        with TestClient(create_app(make_settings())) as second:
            second.get("/healthz")
            count = "convscope_http_requests_total"
            labels = {"method": "GET", "route": "/healthz", "status": "200"}
            assert value(scrape(first), count, **labels) == 2
            assert value(scrape(second), count, **labels) == 1


# --- several workers --------------------------------------------------------------------


@pytest.mark.slow
def test_every_worker_is_counted_whichever_answers_the_scrape(
    weights_path: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    requests = 60
    with local_server(weights_path, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}) as s:

        def get(_: int) -> int:  # a new connection each time, so both workers take some
            return httpx.get(f"{s.url}/api/v1/model", timeout=30, trust_env=False).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(get, range(requests))) == {200}
        served = httpx.get(f"{s.url}/api/v1/models", timeout=30, trust_env=False).json()
        scrapes = [
            parse(httpx.get(f"{s.url}/metrics", timeout=30, trust_env=False).text) for _ in range(6)
        ]
        # what each worker process counted, from its own file
        per_worker = {}
        for path in shared.glob("counter_*.db"):
            pid = path.stem.removeprefix("counter_")
            samples = {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for metric in MultiProcessCollector.merge([str(path)], accumulate=True)
                for sample in metric.samples
            }
            per_worker[pid] = value(
                samples,
                "convscope_http_requests_total",
                method="GET",
                route="/api/v1/model",
                status="200",
            )
    labels = {"method": "GET", "route": "/api/v1/model", "status": "200"}
    for samples in scrapes:
        assert value(samples, "convscope_http_requests_total", **labels) == requests
        info = [dict(k[1]) for k in samples if k[0] == "convscope_model_info"]
        assert sorted((i["name"], i["sha256"]) for i in info) == sorted(
            (m["name"], m["sha256"]) for m in served
        ), info  # once each, though both workers set it
    assert sum(per_worker.values()) == requests
    assert len([n for n in per_worker.values() if n > 0]) == 2, per_worker
    assert shared.is_dir()  # serve removes only a directory it made itself
