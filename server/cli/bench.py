"""`convscope bench --json`: engine speed, and PyTorch's on the same architecture in the same run.

Both sides get the same cores: PyTorch `--torch-threads` intra-op threads, the engine as many
lanes (server/cnn/lanes.py), each with one BLAS thread, for its batches of 64 and 256; a batch
of 1 runs on one thread, as the server runs it.

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
from server.cnn.architectures import build_preset, mnist_cnn
from server.cnn.fusion import plan
from server.cnn.lanes import Lanes
from server.training.memory import keep_freed_memory

Workload = dict[str, Callable[[], object]]


Clock = Callable[[], float]


def sample(
    fn: Callable[[], object], seconds: float, clock: Clock = time.perf_counter
) -> list[float]:
    """Times (by `clock`) of repeated calls to fn for about `seconds` (at least 3 calls)."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < deadline:
        start = clock()
        fn()
        times.append(clock() - start)
    return times


def interleaved(
    workloads: list[Callable[[], object]],
    seconds: float,
    rounds: int,
    clock: Clock = time.perf_counter,
) -> list[float]:
    """Median seconds per call of each workload, measured in alternating rounds."""
    for fn in workloads:  # warm-up: allocations, BLAS threads, torch's kernel choice
        sample(fn, min(0.2, seconds / rounds))
    times: list[list[float]] = [[] for _ in workloads]
    for _ in range(rounds):
        for fn, bucket in zip(workloads, times, strict=True):
            bucket.extend(sample(fn, seconds / rounds, clock))
    return [statistics.median(bucket) for bucket in times]


def numpy_workloads(model: Sequential, rng: np.random.Generator, lanes: Lanes) -> Workload:
    x1 = rng.random((1, 28, 28, 1), dtype=np.float32)
    x256 = rng.random((256, 28, 28, 1), dtype=np.float32)
    x64 = rng.random((64, 28, 28, 1), dtype=np.float32)
    y64 = rng.integers(0, 10, 64)
    optimizer = Adam(model.parameters(), lr=1e-6)

    def train_step() -> None:
        logits, caches = lanes.forward_train(x64, rng)
        _, grad = softmax_cross_entropy(logits, y64)
        grads = lanes.parameter_gradients(grad, caches)  # what a training step computes
        optimizer.step(grads)

    return {
        "forward_b1": lambda: model.forward(x1),
        "forward_b1_trace": lambda: model.trace(x1),  # every output and every pooling mask
        "forward_b256": lambda: lanes.forward(x256),
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


def run(
    weights: Path | None,
    seconds: float,
    rounds: int,
    torch_threads: int,
    clock: Clock = time.perf_counter,
    lanes: int = 1,
) -> dict[str, Any]:
    """Every figure, ours and PyTorch's; with `clock` time.process_time, CPU time, which on a
    busy machine measures one thread a side (--blas-threads 1 --torch-threads 1) steadily."""
    model = load_model(weights).model if weights else mnist_cnn()
    with Lanes(model, lanes) as runner:
        return measured(model, runner, seconds, rounds, torch_threads, clock)


def measured(
    model: Sequential, runner: Lanes, seconds: float, rounds: int, torch_threads: int, clock: Clock
) -> dict[str, Any]:
    """`run`'s figures for this model, ours run by `runner`."""
    ours = numpy_workloads(model, np.random.default_rng(0), runner)
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
        if "train_b64" in mine:  # last: the forward figures keep malloc's defaults, as the server
            keep_freed_memory()  # a training process's malloc (server/training/memory.py)
        workloads = [ours[name] for name in mine] + ([theirs[other]] if theirs else [])
        timed = interleaved(workloads, seconds, rounds, clock)
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
        "malloc_kept_for_training": keep_freed_memory(),
        "lanes": runner.count,
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


class Stopwatch:
    """Times blocks by column and layer index: `with watch("train_forward", 3): ...`."""

    def __init__(self, columns: Sequence[str], layers: int, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.times: dict[str, list[list[float]]] = {c: [[] for _ in range(layers)] for c in columns}
        self.column, self.index, self.start = "", 0, 0.0

    def __call__(self, column: str, index: int) -> Stopwatch:
        self.column, self.index = column, index
        return self

    def __enter__(self) -> None:
        self.start = self.clock()

    def __exit__(self, *exc: object) -> None:
        self.times[self.column][self.index].append(self.clock() - self.start)

    def medians_ms(self, column: str) -> list[float]:
        return [1000 * statistics.median(t) if t else 0.0 for t in self.times[column]]


LAYER_COLUMNS = ("train_forward", "train_backward", "forward_b256", "trace_b1")


def layer_breakdown(
    model: Sequential,
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
    batch: int = 64,
) -> list[dict[str, Any]]:
    """Median milliseconds of each step of a training step (forward in training mode, then
    backward as `parameter_gradients` runs it), of an inference forward of 256 images and of
    the trace of one image. A step is a layer, or the layers a pass runs fused
    (server/cnn/fusion.py), whose backward still runs layer by layer and is summed here; a
    trace runs nothing fused. Every step is timed inside whole passes, so drift hits all alike.

    `clock`: wall time, or with one BLAS thread `time.process_time`, the CPU time this
    process spent, which other processes on a shared machine barely move."""
    rng = np.random.default_rng(0)
    x = rng.random((batch, *model.input_shape), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    x256 = rng.random((256, *model.input_shape), dtype=np.float32)
    x1 = rng.random((1, *model.input_shape), dtype=np.float32)
    layers = model.layers
    steps = plan(layers, model.output_shapes, ())
    step_of = [index for index, step in enumerate(steps) for _ in step.layers]  # layer -> step
    first = next((i for i, layer in enumerate(layers) if layer.params), len(layers))

    def one_round(watch: Stopwatch) -> None:
        h, caches = x, []
        for index, step in enumerate(steps):
            with watch("train_forward", index):
                h, step_caches = step.forward(h, True, rng)
            caches += step_caches
        _, grad = softmax_cross_entropy(h, y)
        for i in range(len(layers) - 1, first - 1, -1):
            with watch("train_backward", step_of[i]):
                if i == first:
                    layers[i].parameter_gradients(grad, caches[i])
                else:
                    grad, _ = layers[i].backward(grad, caches[i])
        h = x256
        for index, step in enumerate(steps):
            with watch("forward_b256", index):
                h, _ = step.forward(h, False, None)
        h = x1
        for i, layer in enumerate(layers):
            with watch("trace_b1", step_of[i]):
                h, cache = layer.forward(h)
                layer.mask(cache)

    def sums_ms(watch: Stopwatch, column: str) -> list[float]:
        """Per step: the median over rounds of the sum of its timings in each round."""
        rounds = len(watch.times["forward_b256"][0])
        totals = [[0.0] * rounds for _ in steps]
        for index, timings in enumerate(watch.times[column]):
            per_round = len(timings) // rounds
            for r in range(rounds):
                totals[index][r] = sum(timings[r * per_round : (r + 1) * per_round])
        return [1000 * statistics.median(t) if any(t) else 0.0 for t in totals]

    one_round(Stopwatch(LAYER_COLUMNS, len(steps), clock))  # warm-up
    watch = Stopwatch(LAYER_COLUMNS, len(steps), clock)
    deadline = time.perf_counter() + seconds
    while len(watch.times["forward_b256"][0]) < 5 or time.perf_counter() < deadline:
        one_round(watch)
    medians = {column: sums_ms(watch, column) for column in LAYER_COLUMNS}
    return [
        {
            "layer": step.name,
            "kind": "+".join(layer.kind for layer in step.layers),
            **{f"{column}_ms": medians[column][index] for column in LAYER_COLUMNS},
        }
        for index, step in enumerate(steps)
    ]


def layer_table(rows: list[dict[str, Any]]) -> str:
    """The breakdown as a Markdown table, with the totals."""
    columns = [key for key in rows[0] if key.endswith("_ms")]
    header = "| layer | " + " | ".join(c.removesuffix("_ms") + " ms" for c in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = " | ".join(f"{row[c]:.3f}" for c in columns)
        lines.append(f"| {row['layer']} ({row['kind']}) | {cells} |")
    totals = " | ".join(f"{sum(row[c] for row in rows):.3f}" for c in columns)
    lines.append(f"| total | {totals} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope bench", description=__doc__)
    parser.add_argument(
        "--weights", type=Path, default=None, help="time this model (default: a fresh one)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and side")
    parser.add_argument("--rounds", type=int, default=6, help="alternations per figure")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument(
        "--lanes",
        type=int,
        default=None,
        help="our threads for the batches of 64 and 256, each with one BLAS thread (default: as "
        "many as --torch-threads; 1 with --cpu-time, which would add up every lane's CPU time)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--layers",
        action="store_true",
        help="time each layer instead (forward and backward of a training step of 64, "
        "forward of 256, trace of 1); no PyTorch",
    )
    parser.add_argument("--arch", default=None, help="with --layers: time this preset instead")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="CPU time, not wall time: steadier on a busy machine, but only meaningful with one "
        "thread a side (--blas-threads 1 --torch-threads 1), since threads waiting count too",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="NumPy's BLAS threads, with --lanes 1 (default: as set; several lanes run one each)",
    )
    args = parser.parse_args(argv)
    if args.lanes is not None and args.lanes < 1:
        parser.error(f"--lanes must be >= 1, got {args.lanes}")
    if args.cpu_time and args.lanes is not None and args.lanes > 1:
        parser.error("--cpu-time adds up every lane's CPU time: use it with --lanes 1")
    default_lanes = 1 if args.cpu_time or args.layers else args.torch_threads
    lanes = default_lanes if args.lanes is None else args.lanes
    clock = time.process_time if args.cpu_time else time.perf_counter
    if lanes > 1 and args.blas_threads not in (None, 1):
        parser.error("lanes run BLAS on one thread each: use --blas-threads with --lanes 1")
    if args.blas_threads is not None:  # several lanes set one BLAS thread themselves
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")
    if args.layers:
        keep_freed_memory()  # the training columns as a training process runs them
        model = (
            build_preset(args.arch)
            if args.arch
            else load_model(args.weights).model
            if args.weights
            else mnist_cnn()
        )
        rows = layer_breakdown(model, args.seconds, clock)
        print(json.dumps(rows) if args.json else layer_table(rows))
        return 0
    result = run(args.weights, args.seconds, args.rounds, args.torch_threads, clock, lanes)
    result["clock"] = "cpu" if args.cpu_time else "wall"
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
