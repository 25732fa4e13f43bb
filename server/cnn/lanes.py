"""A batch cut into small slices, run over threads inside one process (docs/speed.md, "Lanes").

- Small slices: the default's second conv makes 7 MB of columns for 32 images, which stay
  in cache between the copy that writes them and the product that reads them, and which malloc
  reuses; for 256 images they are 58 MB, written out to memory and mapped afresh each time.
  A forward of 256 took 72-73 ms on one core in one piece, 41 in slices of 32
  (scripts/lanes_speed.py).
- Threads: NumPy's matrix products use BLAS threads, but its elementwise work (ReLU, pooling,
  im2col, col2im) runs on one core. Each lane takes slices in turn with one BLAS thread, so
  all of the work runs on every core.

The layers that mix samples while training (batch norm's statistics, dropout's draws from the
one random stream) and everything after the first of them run once on the whole batch, so a
step draws the same random numbers and gives the same gradients as the model alone, summed
in another order.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from server.cnn.model import Params, Sequential

T = TypeVar("T")
SLICE = 32  # samples a slice: 16 was no faster for a step of 64 on one lane, slower on two


@dataclass(frozen=True)
class LaneCaches:
    """What `Lanes.parameter_gradients` needs: each slice's caches for the split layers and the
    whole batch's for the rest."""

    training: bool  # which layers mixed samples, so which ran split
    parts: list[slice]  # the slices of the batch, in order
    split: list[list[Any]]  # per slice, the caches of the layers that ran on it
    joined: list[Any]  # the caches of the layers that ran on the whole batch


class Lanes:
    """Runs `model` over slices of a batch in `count` threads (count 1: this thread alone).

    Used as a context manager, several lanes run BLAS on one thread while they are open (a
    process-wide setting, restored on exit): two lanes of two BLAS threads each would fight for
    two cores. One lane leaves BLAS as it was.
    """

    def __init__(self, model: Sequential, count: int) -> None:
        if count < 1:
            raise ValueError(f"lanes must be >= 1, got {count}")
        self.model = model
        self.count = count
        self._pool = ThreadPoolExecutor(count - 1, "lane") if count > 1 else None
        self._halves: dict[bool, tuple[Sequential | None, Sequential | None]] = {}
        self._blas: threadpool_limits | None = None

    def close(self) -> None:
        """Stop the lane threads and give BLAS its threads back (idempotent); the model alone
        still works."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
            self.count = 1
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None

    def __enter__(self) -> Lanes:
        if self.count > 1 and self._blas is None:
            self._blas = threadpool_limits(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def halves(self, training: bool) -> tuple[Sequential | None, Sequential | None]:
        """The layers that treat each sample alone (run split), then the rest (run joined)."""
        if training not in self._halves:
            layers = self.model.layers
            first_mixing = next(
                (i for i, layer in enumerate(layers) if training and layer.mixes_batch),
                len(layers),
            )
            shapes = [self.model.input_shape, *self.model.output_shapes]
            split = joined = None
            if first_mixing > 0:
                split = Sequential(layers[:first_mixing], self.model.input_shape)
            if first_mixing < len(layers):
                joined = Sequential(layers[first_mixing:], shapes[first_mixing])
            self._halves[training] = (split, joined)
        return self._halves[training]

    @staticmethod
    def slices(n: int) -> list[slice]:
        """Contiguous slices of a batch of n, as even as can be, none over SLICE samples, and an
        even number of them when there are several: a training batch of 64 digits and 16
        non-digits is 4 slices of 20, not 3 of 27 that leave one of two lanes idle a third of
        the step. The batch size alone fixes them, so every lane count gives the same bits (at one
        BLAS thread)."""
        count = -(-n // SLICE) or 1
        count += count % 2 if count > 1 else 0
        bounds = [n * i // count for i in range(count + 1)]
        return [slice(a, b) for a, b in itertools.pairwise(bounds)]

    def map(self, fn: Callable[..., T], *args: Sequence[Any]) -> list[T]:
        """fn over each slice's arguments, in order; the lanes (this thread and the pool's)
        take the next slice as they finish one, so a slow lane holds up nobody."""
        jobs = list(zip(*args, strict=True))
        if self._pool is None or len(jobs) == 1:
            return [fn(*job) for job in jobs]
        results: list[Any] = [None] * len(jobs)
        queue = iter(range(len(jobs)))
        failed = threading.Event()  # once a job has raised, no lane takes another
        lock = threading.Lock()

        def drain() -> None:
            while not failed.is_set():
                with lock:
                    index = next(queue, None)
                if index is None:
                    return
                try:
                    results[index] = fn(*jobs[index])
                except BaseException:
                    failed.set()
                    raise

        helpers = [self._pool.submit(drain) for _ in range(min(self.count, len(jobs)) - 1)]
        try:
            drain()
        finally:  # every lane has stopped before map returns or raises, the caller's error first
            wait(helpers)
        for helper in helpers:
            helper.result()  # a lane's error, raised here
        return results

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Inference logits (N, classes): nothing mixes samples, so every layer runs split."""
        parts = self.slices(len(x))
        if len(parts) == 1:
            return self.model.forward(x)
        return np.concatenate(self.map(self.model.forward, [x[part] for part in parts]))

    def forward_train(
        self, x: np.ndarray, rng: np.random.Generator | None = None, *, training: bool = True
    ) -> tuple[np.ndarray, LaneCaches]:
        """`Sequential.forward_train`, the split layers on slices of x at once."""
        split, joined = self.halves(training)
        parts = self.slices(len(x)) if split is not None else [slice(0, len(x))]
        split_caches: list[list[Any]] = []
        if split is not None:
            run = functools.partial(split.forward_train, training=training)
            outputs = self.map(run, [x[part] for part in parts])
            split_caches = [caches for _, caches in outputs]
            x = outputs[0][0] if len(outputs) == 1 else np.concatenate([out for out, _ in outputs])
        joined_caches: list[Any] = []
        if joined is not None:
            x, joined_caches = joined.forward_train(x, rng, training=training)
        return x, LaneCaches(training, parts, split_caches, joined_caches)

    def parameter_gradients(self, grad_logits: np.ndarray, caches: LaneCaches) -> Params:
        """`Sequential.parameter_gradients`: each slice's gradients, summed."""
        split, joined = self.halves(caches.training)
        if split is None:
            assert joined is not None
            return joined.parameter_gradients(grad_logits, caches.joined)
        grad, grads = grad_logits, Params()
        if joined is not None:
            grad, grads = joined.backward(grad, caches.joined)
        parts = [grad[part] for part in caches.parts]
        for slice_grads in self.map(split.parameter_gradients, parts, caches.split):
            for key, value in slice_grads.items():
                if key in grads:
                    grads[key] += value
                else:
                    grads[key] = value
        return grads
