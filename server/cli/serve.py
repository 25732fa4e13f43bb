"""`convscope serve`: the web app and REST API under uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when a worker imports it


def raise_open_file_limit() -> None:
    """Soft limit up to the hard one: each connection, idle or not, holds a file descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):  # else keep the soft limit we were given
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, a fresh directory for their metrics files (removed at exit), unless
    PROMETHEUS_MULTIPROC_DIR names one already."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="convscope-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers", type=int, default=1, help="processes; each loads the model once"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights file served as the default model (default: CONVSCOPE_WEIGHTS, else "
        "CONVSCOPE_DEFAULT_MODEL in CONVSCOPE_MODELS_DIR)",
    )
    parser.add_argument("--log-level", default=None, help="critical, error, warning, info or debug")
    args = parser.parse_args(argv)
    # Settings travel by environment so every worker process builds the same app.
    if args.weights is not None:
        os.environ["CONVSCOPE_WEIGHTS"] = str(args.weights.resolve())
    if args.log_level is not None:
        os.environ["CONVSCOPE_LOG_LEVEL"] = args.log_level

    import uvicorn

    from server.api.connections import GuardedHttpToolsProtocol
    from server.cnn import ModelFileError, load_model
    from server.config import Settings, compute_process_pays
    from server.logs import logging_config

    os.environ.setdefault("CONVSCOPE_COMPUTE_PROCESS", str(compute_process_pays(args.workers)))
    settings = Settings()
    try:  # say what is wrong in one line, before uvicorn would print a traceback per worker
        load_model(settings.default_weights)
    except ModelFileError as error:
        print(f"convscope serve: cannot load the model weights: {error}", file=sys.stderr)
        return 1
    raise_open_file_limit()
    with shared_metrics_dir(args.workers):
        uvicorn.run(
            "server.api.main:create_default_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            http=GuardedHttpToolsProtocol,  # a deadline for request headers (CONVSCOPE_HEADER_...)
            timeout_keep_alive=settings.keep_alive_s,
            # event streams would hold a shutdown until their job ends; cut them after this
            timeout_graceful_shutdown=settings.shutdown_timeout_s,
            log_config=logging_config(settings.log_level, settings.log_format),
            log_level=settings.log_level,
            access_log=False,  # convscope.access writes one line per request, with its id
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
