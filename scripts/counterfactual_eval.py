#!/usr/bin/env python3
"""Measure counterfactuals as issue 9 asks; prints one JSON line of figures.

On N MNIST test digits (a seeded sample), each with a random target other than the model's
reading: how often the shipped model reads the edit as the target (`reached`, p > 0.5), how
often two independently trained PyTorch CNNs of other architectures read it so (`judges`),
the median L1 of the edit and the median time of one search on this thread.

    python scripts/counterfactual_eval.py --data-dir ../shared/mnist
    python scripts/counterfactual_eval.py --set prior_weight=0 --set view_shift=0   # ablations

The judges (a LeNet-5 with ReLU and average pooling; a 5x5-conv net with batch norm, average
pooling and dropout) train on MNIST's training set once, about 3 min on one core, and are
cached under --cache. Needs the `parity` extra (PyTorch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from server.cnn import load_model, softmax
from server.explain.counterfactual import (
    CounterfactualOptions,
    counterfactual,
    load_class_means,
)
from server.training.mnist import Mnist, default_data_dir, load_mnist

ROOT = Path(__file__).resolve().parent.parent


def lenet() -> nn.Module:
    """LeNet-5 with ReLU: 5x5 convs, average pooling, three dense layers."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),  # (6, 14, 14)
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),  # (16, 5, 5)
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


def bnnet() -> nn.Module:
    """5x5 convs with batch norm and average pooling, a 3x3 conv, dropout, one dense layer."""
    return nn.Sequential(
        nn.Conv2d(1, 24, 5, padding=2), nn.BatchNorm2d(24), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(24, 48, 5, padding=2), nn.BatchNorm2d(48), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(48, 64, 3), nn.BatchNorm2d(64), nn.ReLU(),  # (64, 5, 5)
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 5 * 5, 10),
    )  # fmt: skip


JUDGES: dict[str, tuple[Callable[[], nn.Module], int]] = {"lenet": (lenet, 4), "bnnet": (bnnet, 3)}


def train_judge(name: str, data: Mnist, seed: int = 1) -> tuple[nn.Module, float]:
    """Adam with a one-cycle schedule on all 60,000 training images; (model, test accuracy)."""
    build, epochs = JUDGES[name]
    torch.manual_seed(seed)
    x = torch.tensor(data.train_images, dtype=torch.float32)[:, None] / 255  # (N, 1, 28, 28)
    y = torch.tensor(data.train_labels, dtype=torch.long)
    net = build()
    optimizer = torch.optim.Adam(net.parameters(), 2e-3)
    batches = (len(x) + 127) // 128
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=epochs * batches)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start : start + 128]
            loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    accuracy = float((read(net, data.test_images / 255.0) == data.test_labels).mean())
    return net, accuracy


def read(net: nn.Module, images: np.ndarray) -> np.ndarray:
    """Labels (N,) for (N, 28, 28) images in [0, 1]."""
    with torch.no_grad():
        return net(torch.tensor(images, dtype=torch.float32)[:, None]).argmax(1).numpy()


def judge(name: str, data: Mnist, cache: Path) -> nn.Module:
    """The cached judge, or a freshly trained one (saved for next time)."""
    path = cache / f"judge_{name}.pt"
    net = JUDGES[name][0]()
    if path.is_file():
        net.load_state_dict(torch.load(path))
        net.eval()
        return net
    net, accuracy = train_judge(name, data)
    print(json.dumps({"judge": name, "test_accuracy": accuracy}), flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net


def option(text: str) -> tuple[str, float]:
    key, _, value = text.partition("=")
    names = {f.name for f in dataclasses.fields(CounterfactualOptions)}
    if key not in names:
        raise argparse.ArgumentTypeError(f"{key!r} is not an option; options: {sorted(names)}")
    return key, float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--weights", type=Path, default=ROOT / "model_weights" / "mnist_cnn.npz")
    parser.add_argument(
        "--means", type=Path, default=ROOT / "model_weights" / "explain" / "mnist_class_means.npz"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/convscope-judges"))
    parser.add_argument("-n", type=int, default=100, help="digits to edit")
    parser.add_argument("--seed", type=int, default=0, help="picks the digits and targets")
    parser.add_argument("--set", type=option, action="append", default=[], metavar="OPTION=X")
    args = parser.parse_args()

    threadpool_limits(1, user_api="blas")  # one request thread, as the server runs it
    torch.set_num_threads(1)
    data = load_mnist(args.data_dir)
    model = load_model(args.weights).model
    means = load_class_means(args.means)
    defaults = CounterfactualOptions()
    overrides = {key: type(getattr(defaults, key))(value) for key, value in args.set}
    options = dataclasses.replace(defaults, **overrides)

    rng = np.random.default_rng(args.seed)
    images = data.test_images[rng.choice(len(data.test_images), args.n, replace=False)] / 255.0
    labels = softmax(model.forward(images[..., None].astype(np.float32))).argmax(axis=1)
    targets = [int(rng.choice([d for d in range(10) if d != label])) for label in labels]

    results, seconds = [], []
    for image, target in zip(images, targets, strict=True):
        start = time.perf_counter()
        results.append(counterfactual(model, image, target, means, options))
        seconds.append(time.perf_counter() - start)
    edited = np.stack([r.pixels for r in results])
    figures = {
        "n": args.n,
        "seed": args.seed,
        "options": dataclasses.asdict(options),
        "reached": float(np.mean([r.reached for r in results])),
        "judges": {
            name: float((read(judge(name, data, args.cache), edited) == targets).mean())
            for name in JUDGES
        },
        "median_l1": round(statistics.median(r.l1 for r in results), 1),
        "median_ms": round(1000 * statistics.median(seconds), 1),
        "max_ms": round(1000 * max(seconds), 1),
        "median_steps": statistics.median(r.steps for r in results),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
