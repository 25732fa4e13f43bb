"""The app factory: settings in, a FastAPI app out; the model is loaded once, in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Match, Mount
from starlette.types import Scope
from threadpoolctl import threadpool_limits

from server import __version__
from server.api.compute.dispatch import Compute
from server.api.compute.process import ComputeProcess, ComputeStartError
from server.api.errors import UnhandledErrors, install_error_handlers
from server.api.event_feed import Feeds
from server.api.middleware.compression import Compression
from server.api.middleware.concurrency import ConcurrencyLimit
from server.api.middleware.limits import BodySizeLimit
from server.api.middleware.observe import ObservedRequests
from server.api.middleware.request_id import request_id_middleware
from server.api.middleware.security import SecurityHeaders
from server.api.middleware.timeouts import BodyTimeout
from server.api.openapi import install_openapi
from server.api.prometheus import Metrics, TimedPredictor
from server.api.registry import ModelRegistry
from server.api.routes import (
    atlas,
    counterfactual,
    docs,
    health,
    metrics,
    model_card,
    models,
    predict,
    trainings,
)
from server.api.static import CachedStaticFiles
from server.cnn import ModelFileError
from server.config import Settings
from server.training.jobs.backend import Trainings
from server.training.jobs.job import MakePredictor
from server.training.jobs.local import LocalTrainings
from server.training.jobs.request import DataSource
from server.training.mnist import default_data_dir

logger = logging.getLogger("convscope")


class FrontEnd(Mount):
    """The static front end at /, leaving /api/ to the API (so a wrong method gets 405, not 404)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("path", "").startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


class StartupError(RuntimeError):
    """The server cannot start; the message says why (e.g. which weights file is bad)."""


async def open_trainings(settings: Settings, make_predictor: MakePredictor) -> Trainings:
    """Jobs on the shared broker's queue when CONVSCOPE_BROKER_URL names one, else in this
    process (nothing to set up)."""
    source = DataSource(settings.mnist_dir or default_data_dir(), settings.mnist_download)
    if settings.broker_url:
        from server.training.jobs.shared import SharedTrainings  # the broker's client libraries

        return await SharedTrainings.open(
            settings.broker_url,
            enabled=settings.training,
            max_queued=settings.max_queued,
            ttl_s=settings.training_ttl_s,
            make_predictor=make_predictor,
        )
    return LocalTrainings(
        source,
        enabled=settings.training,
        max_running=settings.max_trainings,
        max_queued=settings.max_queued,
        ttl_s=settings.training_ttl_s,
        make_predictor=make_predictor,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app_metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Many small matrix products from many request threads: BLAS's own threads only fight
        # them (docs/speed.md, "Compute threads").
        threadpool_limits(limits=settings.blas_threads, user_api="blas")
        loader = partial(TimedPredictor.load, observe=app_metrics.observe_pass)
        try:
            models = ModelRegistry.load(settings.models_dir, settings.default_weights, loader)
        except ModelFileError as error:
            raise StartupError(f"cannot load the model weights: {error}") from error
        app.state.models = models
        for name, predictor in models.models.items():
            app_metrics.set_model(name, predictor.sha256)
        logger.info("models loaded: %s (default %s)", ", ".join(models.models), models.default)
        app.state.trainings = await open_trainings(
            settings, partial(TimedPredictor.timed, observe=app_metrics.observe_pass)
        )
        app.state.training_feeds = Feeds(app.state.trainings.events_after)
        models.add_source("training", app.state.trainings.predictor)  # "training:<id>[@<step>]"
        process = None
        if settings.compute_process:  # last: a failure here leaves no other process behind
            process = ComputeProcess(settings, {n: p.sha256 for n, p in models.models.items()})
            try:
                await process.start()
            except ComputeStartError as error:
                await app.state.trainings.close()
                raise StartupError(str(error)) from error
        app.state.compute = Compute(
            settings.compute_threads, models, settings, app_metrics.observe_pass, process
        )
        try:
            yield
        finally:
            await app.state.training_feeds.close()
            await app.state.trainings.close()  # embedded jobs stop: no process left behind
            await app.state.compute.close()
        app_metrics.process_exiting()

    app = FastAPI(
        title="ConvScope",
        version=__version__,
        summary="A pure-NumPy CNN showing every layer's activations, pooling masks and saliency.",
        lifespan=lifespan,
        docs_url=None,  # docs.router serves /docs from local files, under its own policy
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(model_card.router)
    app.include_router(atlas.router)
    app.include_router(predict.router)
    app.include_router(counterfactual.router)
    app.include_router(trainings.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    app.router.routes.append(docs.assets())
    install_openapi(app, settings)
    if settings.web_dir.is_dir():
        front_end = CachedStaticFiles(directory=settings.web_dir, html=True)
        app.router.routes.append(FrontEnd("/", app=front_end, name="web"))
    add_middleware(app, settings, app_metrics)
    return app


def add_middleware(app: FastAPI, settings: Settings, app_metrics: Metrics) -> None:
    """Added innermost first: each add_middleware wraps what came before.

    From the outside in: the request id, then the metrics and the access line, so they see every
    answer, even a rejected one. Then the security headers and CORS, then UnhandledErrors,
    inside them, so a 500 still carries both. Then the limits, cheapest refusal first: too
    many requests in progress (503), a body too slow (408) or too large (413).
    Compression is innermost: it only sees real answers.
    """
    app.add_middleware(Compression, minimum_size=1024, gzip_level=settings.gzip_level)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyTimeout, seconds=settings.body_timeout_s)
    app.add_middleware(
        ConcurrencyLimit,
        max_requests=settings.max_concurrency,
        max_streams=settings.max_streams,
    )
    app.add_middleware(UnhandledErrors)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ObservedRequests, metrics=app_metrics)
    app.add_middleware(request_id_middleware)
