"""Training speed: a live job against `convscope train`'s loop on the same settings.

MNIST_DIR=../shared/mnist python scripts/training_speed.py --train-size 10000
Prints JSON: the loop's images/s alone (what convscope train's bar shows, with a job's BLAS
threads), the job's images/s (its progress events: training time only) and wall-clock figures,
the job's time to each validation accuracy it reached, and the job process's peak resident
memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from server.training.jobs.local import LocalTrainings
from server.training.jobs.request import DataSource, JobConfig
from server.training.jobs.runner import BLAS_THREADS
from server.training.memory import keep_freed_memory
from server.training.mnist import default_data_dir, load_mnist
from server.training.train import Run, split


def loop_alone(config: JobConfig, data_dir: Path) -> float:
    """Images a second of convscope train's loop on these settings, one epoch, nothing else,
    with the BLAS threads a job's process gets (runner.BLAS_THREADS): the same work on the
    same cores, so that the ratio is the job's own overhead."""
    keep_freed_memory()  # as train() does
    train_config = config.train_config()
    rng = np.random.default_rng(train_config.seed)
    train_x, train_y, _, _ = split(load_mnist(data_dir), train_config, rng)
    run = Run.start(train_config, len(train_x))
    started, images = time.perf_counter(), 0
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        for result in run.epoch_steps(1, train_x, train_y, rng):
            images += result.images
    return images / (time.perf_counter() - started)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def job(config: JobConfig, data_dir: Path) -> dict[str, object]:
    trainings = LocalTrainings(DataSource(data_dir, download=False))
    started = time.perf_counter()
    running = trainings.start_job(config, "training_speed")
    peak, seconds_to_98 = 0.0, None
    while running.status == "running":
        time.sleep(0.2)
        process = running.process
        if process is not None and process.is_alive() and process.pid is not None:
            with contextlib.suppress(OSError):
                peak = max(peak, peak_rss_mb(process.pid))
        if seconds_to_98 is None and (running.val_accuracy or 0) >= 0.98:
            seconds_to_98 = time.perf_counter() - started  # within the 0.2 s poll
    wall = time.perf_counter() - started
    events = running.events
    rates = [e.data["img_per_s"] for e in events if e.name == "progress" and e.data["step"] > 0]
    first_98 = next(
        (
            e.data["step"]
            for e in events
            if e.name == "evaluation" and e.data["val_accuracy"] >= 0.98
        ),
        None,
    )
    done = events[-1].data
    trainings.stop_all()
    return {
        "status": running.status,
        "img_per_s_median": float(np.median(rates)) if rates else None,
        "wall_s": wall,
        "wall_img_per_s": config.train_config().limit * config.epochs / wall,
        "first_step_val_98": first_98,
        "seconds_to_val_98": seconds_to_98,
        "done": {k: v for k, v in done.items() if k != "kernels"},
        "peak_rss_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    config = JobConfig(train_size=args.train_size, batch_size=args.batch_size)
    data_dir = default_data_dir()
    report = {"loop_img_per_s": loop_alone(config, data_dir), "job": job(config, data_dir)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
