"""`convscope bench --json`: engine speed, and PyTorch's on the same architecture in the same run.

Ratios compare the two in one process on one machine: absolute figures are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from server.cnn import Adam, Sequential, load_model, softmax_cross_entropy
from server.cnn.architectures import mnist_cnn


def median_seconds(fn: Callable[[], object], min_time: float, min_runs: int = 5) -> float:
    """Median wall time of fn after a warm-up, repeated until min_time has passed."""
    for _ in range(3):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + min_time
    while len(times) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_numpy(model: Sequential, min_time: float, rng: np.random.Generator) -> dict[str, float]:
    x1 = rng.random((1, 28, 28, 1), dtype=np.float32)
    x256 = rng.random((256, 28, 28, 1), dtype=np.float32)
    x64 = rng.random((64, 28, 28, 1), dtype=np.float32)
    y64 = rng.integers(0, 10, 64)
    optimizer = Adam(model.parameters(), lr=1e-4)

    def train_step() -> None:
        logits, caches = model.forward_train(x64, rng)
        _, grad = softmax_cross_entropy(logits, y64)
        grads, _ = model.backward(grad, caches)
        optimizer.step(grads)

    return {
        "forward_b1_ms": 1000 * median_seconds(lambda: model.forward(x1), min_time),
        "forward_b1_trace_ms": 1000 * median_seconds(lambda: model.trace(x1), min_time),
        "forward_b256_img_per_s": 256 / median_seconds(lambda: model.forward(x256), min_time),
        "train_b64_img_per_s": 64 / median_seconds(train_step, min_time),
    }


def torch_twin(model: Sequential) -> Any:
    """The same layers in PyTorch (NCHW), for timing only."""
    import torch
    from torch import nn

    class ToNHWC(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.permute(0, 2, 3, 1)

    modules: list[nn.Module] = []
    for layer in model:
        spec = layer.spec()
        if spec["kind"] == "conv2d":
            padding = spec["kernel_size"] // 2 if spec["padding"] == "same" else spec["padding"]
            padding = 0 if padding == "valid" else padding
            modules.append(
                nn.Conv2d(
                    spec["in_channels"],
                    spec["out_channels"],
                    spec["kernel_size"],
                    spec["stride"],
                    padding,
                )
            )
        elif spec["kind"] == "relu":
            modules.append(nn.ReLU())
        elif spec["kind"] == "maxpool2d":
            modules.append(nn.MaxPool2d(spec["pool_size"], spec["stride"]))
        elif spec["kind"] == "flatten":
            modules += [ToNHWC(), nn.Flatten()]
        elif spec["kind"] == "dense":
            modules.append(nn.Linear(spec["in_features"], spec["out_features"]))
        elif spec["kind"] == "dropout":
            modules.append(nn.Dropout(spec["rate"]))
    return nn.Sequential(*modules)


def bench_torch(model: Sequential, min_time: float, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch_twin(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x1, x256, x64 = torch.rand(1, 1, 28, 28), torch.rand(256, 1, 28, 28), torch.rand(64, 1, 28, 28)
    y64 = torch.randint(0, 10, (64,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step() -> None:
        optimizer.zero_grad()
        loss_fn(net(x64), y64).backward()
        optimizer.step()

    net.train()
    train = median_seconds(train_step, min_time)
    net.eval()
    with torch.inference_mode():
        b1 = median_seconds(lambda: net(x1), min_time)
        b256 = median_seconds(lambda: net(x256), min_time)
    return {
        "forward_b1_ms": 1000 * b1,
        "forward_b256_img_per_s": 256 / b256,
        "train_b64_img_per_s": 64 / train,
        "threads": threads,
        "version": torch.__version__,
    }


def blas_info() -> dict[str, Any]:
    """Which BLAS kernel NumPy runs: OPENBLAS_CORETYPE can pin an older, slower one."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                "library": pool.get("internal_api"),
                "kernel": pool.get("architecture"),
                "threads": pool.get("num_threads"),
            }
    return {}


def run(weights: Path | None, min_time: float, torch_threads: int) -> dict[str, Any]:
    model = load_model(weights).model if weights else mnist_cnn()
    result: dict[str, Any] = bench_numpy(model, min_time, np.random.default_rng(0))
    result["numpy"] = np.__version__
    result["blas"] = blas_info()
    try:
        import torch  # noqa: F401
    except ImportError:
        result["torch"] = None
        return result
    theirs = bench_torch(model, min_time, torch_threads)
    result["torch"] = theirs
    result["ratios"] = {
        "train_b64": result["train_b64_img_per_s"] / theirs["train_b64_img_per_s"],
        "forward_b256": result["forward_b256_img_per_s"] / theirs["forward_b256_img_per_s"],
        "forward_b1_trace_vs_torch_b1": theirs["forward_b1_ms"] / result["forward_b1_trace_ms"],
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope bench", description=__doc__)
    parser.add_argument(
        "--weights", type=Path, default=None, help="time this model (default: a fresh mnist_cnn)"
    )
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(args.weights, args.min_time, args.torch_threads)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
