"""How well weights files read MNIST's test set and handwriting that is not MNIST (server/synth).

python scripts/robustness_eval.py model_weights/mnist_cnn.npz [other.npz ...] \
    --data-dir ../shared/mnist --n 2400 --seed 1000 [--json]

Prints, per file: MNIST test accuracy, the proxy's accuracy overall, on the writers outside MNIST
that no training sees (HELD_OUT_FAMILIES: fonts and hands), per family (strokes, fonts, hands),
per true digit within each family, per style, and the most common confusions. The proxy's seed
defaults to 1000, apart from the seeds training draws stroke digits with
(server/training/train.py), so no image is shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from server.cnn import load_model
from server.synth import HELD_OUT_FAMILIES, ProxySet, proxy_set
from server.training.evaluation import predict_logits
from server.training.mnist import default_data_dir, load_mnist


def load_proxy(n: int, seed: int, cache: Path | None) -> ProxySet:
    """The proxy set, from the cache file when it was built with the same n and seed."""
    if cache and cache.is_file():
        stored = np.load(cache)
        if int(stored["n"]) == n and int(stored["seed"]) == seed:
            return ProxySet(stored["images"], stored["labels"], stored["family"], stored["style"])
    proxy = proxy_set(n, seed)
    if cache:
        np.savez_compressed(cache, n=n, seed=seed, **vars(proxy))
    return proxy


def accuracy_by(groups: np.ndarray, correct: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        str(g): {"accuracy": float(correct[groups == g].mean()), "n": int((groups == g).sum())}
        for g in sorted(set(groups.tolist()))
    }


def digits_by_family(proxy: ProxySet, correct: np.ndarray) -> dict[str, dict[str, float]]:
    """Each family's accuracy per true digit, {family: {"0": accuracy, ...}}: where it misreads."""
    out: dict[str, dict[str, float]] = {}
    for family in sorted(set(proxy.family.tolist())):
        mine = proxy.family == family
        by_digit = accuracy_by(proxy.labels[mine], correct[mine])
        out[family] = {d: v["accuracy"] for d, v in by_digit.items()}
    return out


def report(weights: Path, proxy: ProxySet, mnist: Any) -> dict[str, Any]:
    model = load_model(weights).model
    mnist_pred = predict_logits(model, mnist.test_images).argmax(axis=1)
    pred = predict_logits(model, proxy.images).argmax(axis=1)
    correct = pred == proxy.labels
    held_out = np.isin(proxy.family, HELD_OUT_FAMILIES)
    confusions = Counter(
        (int(t), int(p)) for t, p in zip(proxy.labels, pred, strict=True) if t != p
    )
    return {
        "weights": str(weights),
        "mnist_test_accuracy": float((mnist_pred == mnist.test_labels).mean()),
        "proxy_accuracy": float(correct.mean()),
        "proxy_n": len(proxy),
        "held_out_families": list(HELD_OUT_FAMILIES),
        "held_out_accuracy": float(correct[held_out].mean()) if held_out.any() else None,
        "held_out_n": int(held_out.sum()),
        "families": accuracy_by(proxy.family, correct),
        "digits": digits_by_family(proxy, correct),
        "styles": accuracy_by(proxy.style, correct),
        "confusions": [
            {"true": t, "predicted": p, "count": c} for (t, p), c in confusions.most_common(10)
        ],
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"== {r['weights']}")
    print(f"MNIST test        {r['mnist_test_accuracy']:.4%}")
    print(f"proxy (n={r['proxy_n']})  {r['proxy_accuracy']:.2%}")
    if r["held_out_accuracy"] is not None:
        names = " + ".join(r["held_out_families"])
        print(
            f"writers outside MNIST ({names}, never trained on) "
            f"{r['held_out_accuracy']:.2%} (n={r['held_out_n']})"
        )
    for name, v in r["families"].items():
        print(f"  family {name:<10} {v['accuracy']:.2%} (n={v['n']})")
        digits = r["digits"][name]
        print("    per digit: " + " ".join(f"{d}:{a:.1%}" for d, a in digits.items()))
    worst = sorted(r["styles"].items(), key=lambda kv: kv[1]["accuracy"])
    print("  styles, worst first: " + ", ".join(f"{k} {v['accuracy']:.0%}" for k, v in worst))
    print(
        "  confusions (true->read): "
        + ", ".join(f"{c['true']}->{c['predicted']} x{c['count']}" for c in r["confusions"])
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--n", type=int, default=2400, help="digits per family")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--cache", type=Path, default=None, help="an .npz to keep the proxy in")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    proxy = load_proxy(args.n, args.seed, args.cache)
    print(f"proxy: {len(proxy)} digits in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    mnist = load_mnist(args.data_dir or default_data_dir())
    reports = [report(w, proxy, mnist) for w in args.weights]
    for r in reports:
        print(json.dumps(r)) if args.json else print_report(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
