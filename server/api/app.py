"""The app factory: settings in, a FastAPI app out; the model is loaded once, in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount
from starlette.types import Scope
from threadpoolctl import threadpool_limits

from server import __version__
from server.api.compression import Compression
from server.api.errors import install_error_handlers
from server.api.limits import BodySizeLimit
from server.api.routes import counterfactual, health, model, predict
from server.cnn import ModelFileError
from server.config import Settings
from server.inference import Predictor

logger = logging.getLogger("convscope")


class FrontEnd(Mount):
    """The static front end at /, leaving /api/ to the API (so a wrong method gets 405, not 404)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("path", "").startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


class StartupError(RuntimeError):
    """The server cannot start; the message says why (e.g. which weights file is bad)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Many small matrix products from many request threads: BLAS's own threads only fight
        # them (measured: 16 threads of trace+backward, 5.4 s with 2 BLAS threads, 0.09 s with 1).
        threadpool_limits(limits=settings.blas_threads, user_api="blas")
        try:
            app.state.predictor = Predictor.from_file(settings.weights)
        except ModelFileError as error:
            raise StartupError(f"cannot load the model weights: {error}") from error
        logger.info(
            "model loaded from %s (sha256 %s)", settings.weights, app.state.predictor.sha256[:12]
        )
        yield

    app = FastAPI(
        title="ConvScope",
        version=__version__,
        summary="A pure-NumPy CNN showing every layer's activations, pooling masks and saliency.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(model.router)
    app.include_router(predict.router)
    app.include_router(counterfactual.router)
    app.add_middleware(Compression, minimum_size=1024, gzip_level=settings.gzip_level)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # outermost, so error answers (413 too) carry the header
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    if settings.web_dir.is_dir():
        app.router.routes.append(
            FrontEnd("/", app=StaticFiles(directory=settings.web_dir, html=True), name="web")
        )
    return app
