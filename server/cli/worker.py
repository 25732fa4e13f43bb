"""`convscope worker`: train the jobs of a shared broker's queue (CONVSCOPE_BROKER_URL).

CONVSCOPE_BROKER_URL=redis://localhost:6379/0 convscope worker --slots 1 --data-dir $MNIST_DIR

Argument parsing only: the work is server/training/jobs/worker.py (the same concept, one level
down). Run as many as you like, on any machine that reaches the broker and has MNIST.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from server.config import Settings
from server.logs import logging_config
from server.training.jobs.local import mnist_present
from server.training.mnist import default_data_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope worker", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--slots", type=int, default=1, help="jobs at once, each a process with one BLAS thread"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="MNIST (default: $CONVSCOPE_MNIST_DIR, $MNIST_DIR, then the user cache dir)",
    )
    parser.add_argument("--broker", default=None, help="default: $CONVSCOPE_BROKER_URL")
    args = parser.parse_args(argv)
    settings = Settings()
    url = args.broker or settings.broker_url
    if not url:
        parser.error("no broker: set CONVSCOPE_BROKER_URL (redis://host:port/db) or --broker")
    if args.slots < 1:
        parser.error(f"--slots must be at least 1, got {args.slots}")
    mnist_dir = args.data_dir or settings.mnist_dir or default_data_dir()
    if not mnist_present(mnist_dir):
        print(
            f"convscope worker: MNIST is not in {mnist_dir}; put the four IDX files there or "
            "point --data-dir (or CONVSCOPE_MNIST_DIR) at them",
            file=sys.stderr,
        )
        return 2
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    logging.getLogger("convscope").info(
        "worker %d: %d slot(s), MNIST in %s", os.getpid(), args.slots, mnist_dir
    )
    from server.training.jobs.worker import run_worker  # the broker's client libraries

    asyncio.run(run_worker(url, args.slots, mnist_dir, int(settings.training_ttl_s)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
