"""All run-time settings in one object, read from CONVSCOPE_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.cores import available_cores

ROOT = Path(__file__).resolve().parent.parent


def compute_process_pays(workers: int = 1) -> bool:
    """Whether every server process and its compute process can have a CPU each: only then does
    the compute process answer more predictions a second than the threads; sharing a CPU, the
    hop costs more than it frees (docs/speed.md, "The second core")."""
    return available_cores() >= 2 * workers


class Settings(BaseSettings):
    """CONVSCOPE_WEIGHTS, CONVSCOPE_MAX_BODY_BYTES, CONVSCOPE_CORS_ORIGINS, ..."""

    model_config = SettingsConfigDict(env_prefix="CONVSCOPE_", frozen=True)

    models_dir: Path = Field(
        default=ROOT / "model_weights", description="every .npz here is a model, named by its stem"
    )
    default_model: str = Field(
        default="mnist_cnn", description="the model a request gets when it names none"
    )
    weights: Path | None = Field(
        default=None,
        description="a weights file served as the default model instead of DEFAULT_MODEL "
        "(`convscope serve --weights`)",
    )
    web_dir: Path = Field(default=ROOT / "web", description="static front end served at /")
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, gt=0, description="larger requests get 413"
    )
    max_image_side: int = Field(default=4096, gt=0, description="wider or taller images get 413")
    max_batch: int = Field(default=256, gt=0, description="items per /predict/batch request")
    cors_origins: list[str] = Field(
        default_factory=list, description='JSON list, e.g. ["https://a.example"]'
    )
    compute_process: bool = Field(
        default_factory=compute_process_pays,
        description="predictions run in a process of their own beside each server process, so "
        "their Python uses another CPU than the event loop (default: when each server process "
        "and its compute process can have a CPU); false: on compute threads, taking turns with "
        "the event loop for the GIL. A training job's model always uses the threads",
    )
    compute_threads: int = Field(
        default_factory=lambda: max(1, available_cores() - 1),
        ge=1,
        description="predictions computed at once per process on threads (default: one CPU "
        "fewer than it may use, leaving one to the event loop); more wait their turn, which costs "
        "less CPU than threads trading the GIL",
    )
    blas_threads: int = Field(
        default=1, ge=1, description="BLAS threads per process; requests already run in parallel"
    )
    gzip_level: int = Field(
        default=3, ge=1, le=9, description="response compression, 1 fast .. 9 small"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, for log collectors"
    )
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="a request body not fully received by then gets 408"
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a connection that has not sent its headers by then closes"
    )
    keep_alive_s: int = Field(
        default=5, ge=1, description="an idle keep-alive connection closes after this many seconds"
    )
    max_concurrency: int = Field(
        default=64, ge=1, description="requests in progress per process; more get 503"
    )

    @property
    def default_weights(self) -> Path:
        """The file the default model is read from."""
        return self.weights or self.models_dir / f"{self.default_model}.npz"

    class_means: Path = Field(
        default=ROOT / "model_weights" / "explain" / "mnist_class_means.npz",
        description="mean MNIST image per digit, the pull of counterfactual edits",
    )
    heavy_threads: int = Field(
        default=1,
        ge=1,
        description="counterfactual searches and occlusion maps computed at once per process, "
        "on threads of their own",
    )
    max_heavy_queued: int = Field(
        default=8, ge=0, description="searches waiting for those threads; more get 503"
    )
    counterfactual_seconds: float = Field(
        default=5.0, gt=0, description="longest counterfactual search; then the best edit so far"
    )
    training: bool = Field(
        default=True,
        description="false: POST /api/v1/trainings answers 403 (for public deployments)",
    )
    max_trainings: int = Field(
        default=1,
        ge=0,
        description="embedded mode: training jobs running at once per process; more wait in line",
    )
    max_queued: int = Field(
        default=100, ge=0, description="training jobs waiting in line; more get 429"
    )
    broker_url: str | None = Field(
        default=None,
        description="redis://[:password@]host:port/db of a Redis or Valkey server: training jobs "
        "go on its queue for `convscope worker`s, and every replica serves every job "
        "(default: none, jobs train in this process)",
    )
    max_streams: int = Field(
        default=1000, ge=1, description="event streams open at once per process; more get 503"
    )
    training_ttl_s: float = Field(
        default=3600.0, gt=0, description="a finished training job is freed after this long"
    )
    mnist_dir: Path | None = Field(
        default=None,
        description="MNIST IDX files for training jobs (default: $MNIST_DIR, then the user cache)",
    )
    mnist_download: bool = Field(
        default=True, description="fetch MNIST into mnist_dir once when it is missing"
    )
    shutdown_timeout_s: int = Field(
        default=5,
        gt=0,
        description="on shutdown, responses still streaming (training events) are cut after this",
    )
