"""Many threads share one model: each must get exactly what a serial call computes.

Layers keep no per-call state, so this holds by construction; the test guards against someone
caching activations on a layer (or an optimisation that reuses a buffer) later.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from server.cnn import Sequential, load_model, softmax_cross_entropy
from server.cnn.architectures import mnist_cnn
from server.synth import stroke_set

THREADS = 16
REPEATS = 2
SHIPPED = Path(__file__).resolve().parents[2] / "model_weights" / "mnist_cnn.npz"


@pytest.fixture(scope="module")
def model() -> Sequential:
    return load_model(SHIPPED).model if SHIPPED.is_file() else mnist_cnn(seed=0)


def saliency(model: Sequential, x: np.ndarray) -> tuple[np.ndarray, list, np.ndarray, dict]:
    """Trace, then the gradient of the top class's log-probability w.r.t. the input."""
    trace = model.trace(x)
    top = trace.logits.argmax(axis=1)
    _, grad = softmax_cross_entropy(trace.logits, top)
    grad_x, grads = model.backward(-grad, trace.caches)
    return trace.logits, trace.layers, grad_x, grads


def run_concurrently(fn, inputs: list[np.ndarray]) -> list[list]:
    barrier = threading.Barrier(len(inputs))

    def worker(x: np.ndarray) -> list:
        barrier.wait(timeout=30)  # every thread starts at the same moment
        return [fn(x) for _ in range(REPEATS)]

    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        return list(pool.map(worker, inputs))


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    """Each thread its own digits, batch sizes 1 and 2 in turn. Pen-stroke digits, not noise:
    a network trained with outlier exposure reads noise as no digit, many noises alike."""
    digits = stroke_set(THREADS * 2, seed=99, via_png=False).images  # (2T, 28, 28)
    return [digits[2 * i : 2 * i + 1 + i % 2, ..., None] for i in range(THREADS)]


def test_concurrent_forward(model: Sequential, inputs: list[np.ndarray]) -> None:
    serial = [model.forward(x) for x in inputs]
    assert len({s.tobytes() for s in serial}) == THREADS  # the inputs really differ
    results = run_concurrently(model.forward, inputs)
    for expected, repeats in zip(serial, results, strict=True):
        for got in repeats:
            np.testing.assert_array_equal(got, expected)


def test_concurrent_trace(model: Sequential, inputs: list[np.ndarray]) -> None:
    serial = [model.trace(x) for x in inputs]
    results = run_concurrently(model.trace, inputs)
    for expected, repeats in zip(serial, results, strict=True):
        for got in repeats:
            np.testing.assert_array_equal(got.logits, expected.logits)
            for a, b in zip(got.layers, expected.layers, strict=True):
                np.testing.assert_array_equal(a.output, b.output, err_msg=a.name)
                if b.mask is None:
                    assert a.mask is None
                else:
                    np.testing.assert_array_equal(a.mask, b.mask, err_msg=a.name)


def test_concurrent_trace_and_backward(model: Sequential, inputs: list[np.ndarray]) -> None:
    before = {k: v.copy() for k, v in model.parameters().items()}
    serial = [saliency(model, x) for x in inputs]
    results = run_concurrently(lambda x: saliency(model, x), inputs)
    for (logits, layers, grad_x, grads), repeats in zip(serial, results, strict=True):
        assert np.abs(grad_x).max() > 0
        for got_logits, got_layers, got_grad_x, got_grads in repeats:
            np.testing.assert_array_equal(got_logits, logits)
            for a, b in zip(got_layers, layers, strict=True):
                np.testing.assert_array_equal(a.output, b.output)
            np.testing.assert_array_equal(got_grad_x, grad_x)
            for key in grads:
                np.testing.assert_array_equal(got_grads[key], grads[key], err_msg=key)
    for key, value in model.parameters().items():  # nobody wrote to the shared weights
        np.testing.assert_array_equal(value, before[key])
