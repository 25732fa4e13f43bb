"""`convscope bench --json`: engine speed, and PyTorch's on the same architecture in the same run.

Timings on a shared machine drift within a minute, so each figure is measured in
interleaved rounds (ours, theirs, ours, ...) and reported as the median over all rounds:
drift then hits both sides alike and the ratios hold still.
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

Workload = dict[str, Callable[[], object]]


def sample(fn: Callable[[], object], seconds: float) -> list[float]:
    """Wall times of repeated calls to fn for about `seconds` (at least 3 calls)."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def interleaved(workloads: list[Callable[[], object]], seconds: float, rounds: int) -> list[float]:
    """Median seconds per call of each workload, measured in alternating rounds."""
    for fn in workloads:  # warm-up: allocations, BLAS threads, torch's kernel choice
        sample(fn, min(0.2, seconds / rounds))
    times: list[list[float]] = [[] for _ in workloads]
    for _ in range(rounds):
        for fn, bucket in zip(workloads, times, strict=True):
            bucket.extend(sample(fn, seconds / rounds))
    return [statistics.median(bucket) for bucket in times]


def numpy_workloads(model: Sequential, rng: np.random.Generator) -> Workload:
    x1 = rng.random((1, 28, 28, 1), dtype=np.float32)
    x256 = rng.random((256, 28, 28, 1), dtype=np.float32)
    x64 = rng.random((64, 28, 28, 1), dtype=np.float32)
    y64 = rng.integers(0, 10, 64)
    optimizer = Adam(model.parameters(), lr=1e-6)

    def train_step() -> None:
        logits, caches = model.forward_train(x64, rng)
        _, grad = softmax_cross_entropy(logits, y64)
        grads = model.parameter_gradients(grad, caches)  # what a training step computes
        optimizer.step(grads)

    return {
        "forward_b1": lambda: model.forward(x1),
        "forward_b1_trace": lambda: model.trace(x1),  # every output and every pooling mask
        "forward_b256": lambda: model.forward(x256),
        "train_b64": train_step,
    }


def torch_twin(model: Sequential) -> Any:
    """The same layers in PyTorch (NCHW), for timing only."""
    import torch
    from torch import nn

    class ToNHWC(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.permute(0, 2, 3, 1)

    modules: list[nn.Module] = []
    for layer, shape in zip(model, model.output_shapes, strict=True):
        spec = layer.spec()
        kind = spec["kind"]
        if kind == "conv2d":
            padding = spec["padding"]
            if padding == "same":
                padding = spec["kernel_size"] // 2
            elif padding == "valid":
                padding = 0
            modules.append(
                nn.Conv2d(
                    spec["in_channels"],
                    spec["out_channels"],
                    spec["kernel_size"],
                    spec["stride"],
                    padding,
                    bias=spec["bias"],
                )
            )
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "tanh":
            modules.append(nn.Tanh())
        elif kind == "sigmoid":
            modules.append(nn.Sigmoid())
        elif kind == "maxpool2d":
            modules.append(nn.MaxPool2d(spec["pool_size"], spec["stride"]))
        elif kind == "avgpool2d":
            modules.append(nn.AvgPool2d(spec["pool_size"], spec["stride"]))
        elif kind == "batchnorm":
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            modules.append(norm(spec["num_features"], eps=spec["eps"], momentum=spec["momentum"]))
        elif kind == "flatten":
            modules += [ToNHWC(), nn.Flatten()]
        elif kind == "dense":
            modules.append(nn.Linear(spec["in_features"], spec["out_features"]))
        elif kind == "dropout":
            modules.append(nn.Dropout(spec["rate"]))
        else:
            raise ValueError(f"no PyTorch twin for layer kind {kind!r}")
    return nn.Sequential(*modules)


def torch_workloads(model: Sequential, threads: int) -> Workload:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch_twin(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-6)
    x1, x256 = torch.rand(1, 1, 28, 28), torch.rand(256, 1, 28, 28)
    x64, y64 = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step() -> None:
        net.train()
        optimizer.zero_grad()
        loss_fn(net(x64), y64).backward()
        optimizer.step()

    def infer(x: Any) -> Callable[[], object]:
        def run() -> object:
            net.eval()
            with torch.inference_mode():
                return net(x)

        return run

    return {"forward_b1": infer(x1), "forward_b256": infer(x256), "train_b64": train_step}


def blas_info() -> dict[str, Any]:
    """Which BLAS kernel NumPy runs: OPENBLAS_CORETYPE can pin an older, slower one."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                "library": pool.get("internal_api"),
                "kernel": pool.get("architecture"),
                "threads": pool.get("num_threads"),
            }
    return {}


def run(weights: Path | None, seconds: float, rounds: int, torch_threads: int) -> dict[str, Any]:
    model = load_model(weights).model if weights else mnist_cnn()
    ours = numpy_workloads(model, np.random.default_rng(0))
    try:
        theirs: Workload | None = torch_workloads(model, torch_threads)
    except ImportError:
        theirs = None
    # Figures measured in the same rounds: ours, then PyTorch's counterpart.
    groups = [
        (["forward_b1", "forward_b1_trace"], "forward_b1"),
        (["forward_b256"], "forward_b256"),
        (["train_b64"], "train_b64"),
    ]
    medians: dict[str, float] = {}
    torch_medians: dict[str, float] = {}
    for mine, other in groups:
        workloads = [ours[name] for name in mine] + ([theirs[other]] if theirs else [])
        timed = interleaved(workloads, seconds, rounds)
        medians.update(zip(mine, timed, strict=False))
        if theirs:
            torch_medians[other] = timed[-1]
    result: dict[str, Any] = {
        "forward_b1_ms": 1000 * medians["forward_b1"],
        "forward_b1_trace_ms": 1000 * medians["forward_b1_trace"],
        "forward_b256_img_per_s": 256 / medians["forward_b256"],
        "train_b64_img_per_s": 64 / medians["train_b64"],
        "numpy": np.__version__,
        "blas": blas_info(),
        "torch": None,
    }
    if theirs is None:
        return result
    import torch

    result["torch"] = {
        "forward_b1_ms": 1000 * torch_medians["forward_b1"],
        "forward_b256_img_per_s": 256 / torch_medians["forward_b256"],
        "train_b64_img_per_s": 64 / torch_medians["train_b64"],
        "threads": torch_threads,
        "version": torch.__version__,
    }
    result["ratios"] = {  # ours / PyTorch's speed: above 1 means faster than PyTorch
        "train_b64": torch_medians["train_b64"] / medians["train_b64"],
        "forward_b256": torch_medians["forward_b256"] / medians["forward_b256"],
        "forward_b1": torch_medians["forward_b1"] / medians["forward_b1"],
        # our forward with every activation and mask vs PyTorch's plain forward
        "forward_b1_trace_vs_torch_b1": torch_medians["forward_b1"] / medians["forward_b1_trace"],
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope bench", description=__doc__)
    parser.add_argument(
        "--weights", type=Path, default=None, help="time this model (default: a fresh one)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and side")
    parser.add_argument("--rounds", type=int, default=6, help="alternations per figure")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(args.weights, args.seconds, args.rounds, args.torch_threads)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
