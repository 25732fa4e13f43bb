"""`convscope serve`: the web app and REST API under uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


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
        help="weights file (default: CONVSCOPE_WEIGHTS or the shipped model)",
    )
    parser.add_argument("--log-level", default=None, help="critical, error, warning, info or debug")
    args = parser.parse_args(argv)
    # Settings travel by environment so every worker process builds the same app.
    if args.weights is not None:
        os.environ["CONVSCOPE_WEIGHTS"] = str(args.weights.resolve())
    if args.log_level is not None:
        os.environ["CONVSCOPE_LOG_LEVEL"] = args.log_level

    import uvicorn

    from server.cnn import ModelFileError, load_model
    from server.config import Settings

    settings = Settings()
    try:  # say what is wrong in one line, before uvicorn would print a traceback per worker
        load_model(settings.weights)
    except ModelFileError as error:
        print(f"convscope serve: cannot load the model weights: {error}", file=sys.stderr)
        return 1
    uvicorn.run(
        "server.api.main:create_default_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
