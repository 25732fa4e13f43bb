"""Prometheus metrics: requests by route and status, latency, inference time, requests in
progress and which model is served.

With several worker processes (`convscope serve --workers N`) each writes its values to files
in PROMETHEUS_MULTIPROC_DIR and /metrics adds up every worker's files, so whichever worker
answers the scrape reports the whole server.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.routing import Match, Mount, Route, compile_path
from starlette.types import Scope

from server.api.middleware.asgi import route_path
from server.cnn import Sequential
from server.inference import Explanation, Predictor

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # one label for every path no route knows, however many there are
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# seconds, from a health check (under a millisecond) to a slow counterfactual (docs/speed.md)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# seconds, from one image's forward pass to a full batch's (docs/speed.md)
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


def multiprocess_dir() -> str | None:
    """Where the workers share their values, when there are several (set by convscope serve)."""
    return os.environ.get(MULTIPROC_ENV) or None


@dataclass(frozen=True)
class Metrics:
    """The app's metrics, registered in a registry of its own (so two apps never collide)."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    in_progress: Gauge
    inference: Histogram
    model_info: Gauge

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "convscope_http_requests",
                "HTTP requests answered, by method, route template and status",
                ["method", "route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "convscope_http_request_duration_seconds",
                "Time from a request's arrival to the end of its answer, by route template",
                ["method", "route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            in_progress=Gauge(
                "convscope_http_requests_in_progress",
                "Requests being answered right now",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            inference=Histogram(
                "convscope_inference_seconds",
                "Time in the network: predict (a batch) or explain (one image with its trace)",
                ["kind"],
                buckets=INFERENCE_BUCKETS,
                registry=registry,
            ),
            model_info=Gauge(
                "convscope_model_info",
                "A served model: 1, labelled with its name and the SHA-256 of its weights file",
                ["name", "sha256"],
                registry=registry,
                multiprocess_mode="max",
            ),
        )

    def observe_pass(self, kind: str, seconds: float) -> None:
        """One pass through a network: "predict" (a batch) or "explain" (one image, traced)."""
        self.inference.labels(kind).observe(seconds)

    def set_model(self, name: str, sha256: str) -> None:
        self.model_info.labels(name, sha256).set(1)

    def exposition(self) -> bytes:
        """The text format: this process's registry, or every worker's files when there are
        several."""
        shared = multiprocess_dir()
        if shared is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def process_exiting(self) -> None:
        """Drop this worker's gauges of live values, so they stop counting towards the sum."""
        shared = multiprocess_dir()
        if shared is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid(), shared)  # type: ignore[no-untyped-call]


def route_template(scope: Scope) -> str:
    """The matched route's path template ("/api/v1/model/layers/{name}/weights"), never the raw
    path: one label per route however many paths there are."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if isinstance(template, str):
        return template
    return unrouted_template(scope)


def unrouted_template(scope: Scope) -> str:
    """The template for a request answered before routing (a 503 from the cap, a 408) or that
    no route took: the documented paths first, then the mounts (the front end takes the rest)."""
    app = scope.get("app")
    if app is None:
        return UNMATCHED
    path = route_path(scope)
    for pattern, template in documented_paths(app):
        if pattern.fullmatch(path):
            return template
    for candidate in app.routes:
        if isinstance(candidate, Route | Mount) and candidate.matches(scope)[0] is Match.FULL:
            return str(candidate.path_format)
    return UNMATCHED


def documented_paths(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """(regex, template) for each path in the app's OpenAPI schema, built once per app."""
    table: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "path_table", None)
    if table is None:
        table = [(compile_path(path)[0], path) for path in app.openapi().get("paths", {})]
        app.state.path_table = table
    return table


PassObserver = Callable[[str, float], None]  # the kind and seconds of one pass through a network


class TimedPredictor(Predictor):
    """A Predictor that reports how long each pass through the network takes."""

    observe: PassObserver | None = None  # set once loaded, by load()

    @classmethod
    def load(cls, path: Path, observe: PassObserver) -> TimedPredictor:
        predictor = cls.from_file(path)
        assert isinstance(predictor, cls), "from_file builds the class it is called on"
        predictor.observe = observe
        return predictor

    @classmethod
    def timed(
        cls, model: Sequential, metadata: dict[str, Any], sha256: str, observe: PassObserver
    ) -> TimedPredictor:
        """One for weights held in memory (a training job's), timed like the loaded ones."""
        predictor = cls(model, metadata, sha256)
        predictor.observe = observe
        return predictor

    @contextmanager
    def _timed(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.observe is not None:
                self.observe(kind, time.perf_counter() - start)

    def classify(self, *args: Any, **kwargs: Any) -> Any:  # predict() calls it too
        with self._timed("predict"):
            return super().classify(*args, **kwargs)

    def explain(self, *args: Any, **kwargs: Any) -> Explanation:
        with self._timed("explain"):
            return super().explain(*args, **kwargs)
