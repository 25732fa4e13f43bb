#!/usr/bin/env python3
"""What lanes (server/cnn/lanes.py) gain: a batch in one piece against slices, one lane against two.

    python scripts/lanes_speed.py --weights model_weights/mnist_cnn.npz

Prints JSON, medians of repeated calls, BLAS on one thread throughout:
- the forward of 256 and of 1,000 images in one piece (`Sequential.forward`) and in slices on
  this thread (`Lanes(model, 1)`), wall and CPU ms, with malloc's defaults (as the server runs);
- a training step of 64 (forward, loss, gradients, Adam) on one lane and on two, wall ms and the
  process's CPU ms a step (both lanes' CPU added up), with malloc kept (as training runs), for
  slices of 16 and of 32.
Rounds alternate, so drift on a shared machine hits every variant alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import server.cnn.lanes as lanes_module
from server.cnn import Adam, Sequential, load_model, softmax_cross_entropy
from server.cnn.lanes import Lanes
from server.training.memory import keep_freed_memory


def timed(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Median wall and CPU (this process, every thread) milliseconds of `calls` calls."""
    wall, cpu = [], []
    for _ in range(calls):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def forwards(model: Sequential, rounds: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    sliced = Lanes(model, 1)
    figures: dict[str, list[float]] = {}
    for n in (256, 1000):
        x = rng.random((n, *model.input_shape), dtype=np.float32)
        variants: dict[str, Callable[[], object]] = {
            f"forward_{n}_whole": functools.partial(model.forward, x),
            f"forward_{n}_slices": functools.partial(sliced.forward, x),
        }
        for fn in variants.values():
            fn()  # warm-up
        for _ in range(rounds):
            for name, fn in variants.items():
                wall, cpu = timed(fn, 5)
                figures.setdefault(f"{name}_ms", []).append(wall)
                figures.setdefault(f"{name}_cpu_ms", []).append(cpu)
    return figures


def steps(model: Sequential, rounds: int) -> dict[str, list[float]]:
    keep_freed_memory()
    rng = np.random.default_rng(0)
    x = rng.random((64, *model.input_shape), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    optimizer = Adam(model.parameters(), lr=1e-6)
    figures: dict[str, list[float]] = {}
    runners = {count: Lanes(model, count) for count in (1, 2)}

    def step(runner: Lanes) -> None:
        logits, caches = runner.forward_train(x, rng)
        _, grad = softmax_cross_entropy(logits, y)
        optimizer.step(runner.parameter_gradients(grad, caches))

    for _ in range(rounds):
        for size in (32, 16):
            lanes_module.SLICE = size
            for count, runner in runners.items():
                for _ in range(3):
                    step(runner)  # warm-up
                wall, cpu = timed(functools.partial(step, runner), 20)
                figures.setdefault(f"step_{count}_lanes_slice_{size}_ms", []).append(wall)
                figures.setdefault(f"step_{count}_lanes_slice_{size}_cpu_ms", []).append(cpu)
    lanes_module.SLICE = 32
    for runner in runners.values():
        runner.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=Path("model_weights/mnist_cnn.npz"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = load_model(args.weights).model
    with threadpool_limits(limits=1, user_api="blas"):
        figures = forwards(model, args.rounds)  # before malloc is kept: the server's malloc
        figures.update(steps(model, args.rounds))
    medians = {name: round(statistics.median(values), 2) for name, values in figures.items()}
    print(json.dumps(medians, indent=2))


if __name__ == "__main__":
    main()
