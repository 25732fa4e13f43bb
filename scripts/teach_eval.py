"""Teach it your handwriting, measured: writers outside MNIST teach the shipped model 5 drawings
of each digit through the API, and it is scored on the same writers' other drawings.

    MNIST_DIR=../shared/mnist python scripts/teach_eval.py                # through the API
    MNIST_DIR=../shared/mnist python scripts/teach_eval.py --ablations    # the recipe's ablations

The writers are the handwriting fonts of server/synth (never trained on), each a person: every
drawing of theirs a fresh page (size, pen, paper, noise), the PNG sent as a browser sends one.
By default the writers the shipped model misreads most (below --hard, 97%): those are the
learners "teach it" is for; --all scores every font. Per writer: the reading of 20 other drawings
of each digit before and after, MNIST test accuracy before and after (from the job's `done`),
and the seconds from the POST to the `done` event. --ablations runs the recipe's variants on the
same writers without a server (server/training/finetune.py directly).
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.cli.local_server import local_server
from server.cnn import load_model
from server.preprocess import digit_from_gray
from server.synth.fonts import available_fonts
from server.synth.proxy import font_page
from server.synth.render import png
from server.training.evaluation import predict_logits
from server.training.finetune import Finetune, FinetuneConfig, blend_towards
from server.training.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "model_weights" / "mnist_cnn.npz"
SEED = 3000  # apart from the proxy's 1000 and training's strokes


class Writer:
    """One font's drawings: `teach` (5 a digit) and `test` (20 a digit), as PNGs and inputs."""

    def __init__(self, name: str, per_digit_teach: int = 5, per_digit_test: int = 20) -> None:
        fonts = list(available_fonts())
        index = fonts.index(name)
        self.name = name
        self.pngs: list[bytes] = []
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        for k in range(per_digit_teach + per_digit_test):
            for digit in range(10):
                levels, label, _ = font_page(digit + 10 * (index + k * len(fonts)), SEED)
                self.pngs.append(png(levels))
                self.images.append(digit_from_gray(levels))
                self.labels.append(label)
        self.teach = slice(0, 10 * per_digit_teach)
        self.test = slice(10 * per_digit_teach, None)

    def x(self, part: slice) -> np.ndarray:
        return np.stack(self.images[part])  # (N, 28, 28)

    def y(self, part: slice) -> np.ndarray:
        return np.array(self.labels[part])


def choose_writers(hard: float, everyone: bool) -> list[Writer]:
    model = load_model(SHIPPED).model
    writers = [Writer(name) for name in available_fonts()]
    if everyone:
        return writers
    return [w for w in writers if accuracy(model, w.x(w.test), w.y(w.test)) < hard]


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict_logits(model, x).argmax(axis=1) == y).mean())


def through_api(url: str, writer: Writer, steps: int) -> dict[str, Any]:
    """POST the writer's 50 drawings as PNGs, follow the job to `done`, then read the other
    drawings with the taught model and with the shipped one (both through /predict/batch)."""
    examples = [
        {"image": base64.b64encode(data).decode(), "label": label}
        for data, label in zip(writer.pngs[writer.teach], writer.labels[writer.teach], strict=True)
    ]
    body = {"kind": "finetune", "base_model": "mnist_cnn", "examples": examples, "steps": steps}
    with httpx.Client(timeout=600) as client:
        started = time.monotonic()
        created = client.post(
            f"{url}/api/v1/trainings", json=body, headers={"X-Client-Id": f"teach-{writer.name}"}
        )
        created.raise_for_status()
        job_id = created.json()["id"]
        done: dict[str, Any] = {}
        with client.stream("GET", f"{url}/api/v1/trainings/{job_id}/events") as stream:
            name = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name in {"done", "failed", "cancelled"}:
                    done = {"event": name, **json.loads(line.removeprefix("data: "))}
                    break
        seconds = time.monotonic() - started
        images = [base64.b64encode(data).decode() for data in writer.pngs[writer.test]]

        def read(model: str) -> float:
            labels = []
            for start in range(0, len(images), 40):  # a batch's body stays under the 5 MB limit
                chunk = {"images": images[start : start + 40], "model": model}
                answer = client.post(f"{url}/api/v1/predict/batch", json=chunk)
                answer.raise_for_status()
                labels += answer.json()["labels"]
            return float((np.array(labels) == writer.y(writer.test)).mean())

        return {
            "writer": writer.name,
            "before": read("mnist_cnn"),
            "after": read(f"training:{job_id}"),
            "mnist_before": done.get("base_test_accuracy"),
            "mnist_after": done.get("test_accuracy"),
            "seconds_to_done": seconds,
            "ended": done.get("event"),
        }


def ablations(writers: list[Writer], mnist: Any) -> list[dict[str, Any]]:
    """The recipe and its variants on the same writers, without a server."""
    base = load_model(SHIPPED).model
    recipe = FinetuneConfig()
    variants = {
        "the recipe": recipe,
        "no averaging with the base (keep_base 0)": replace(recipe, keep_base=0.0),
        "no augmentation": replace(recipe, augment=False),
        "no MNIST replay": replace(recipe, replay_per_batch=0),
        "learning rate 3e-4": replace(recipe, learning_rate=3e-4),
        "learning rate 3e-3": replace(recipe, learning_rate=3e-3),
        "100 steps": replace(recipe, steps=100),
        "300 steps": replace(recipe, steps=300),
        "SGD (momentum 0.9) at 0.01": replace(recipe, optimizer="sgd", learning_rate=0.01),
    }
    mnist_before = accuracy(base, mnist.test_images, mnist.test_labels)
    rows = []
    for label, config in variants.items():
        gains, mnist_after, seconds = [], [], []
        for writer in writers:
            model = copy.deepcopy(base)
            clock = time.perf_counter()
            run = Finetune(
                model,
                writer.x(writer.teach),
                writer.y(writer.teach),
                mnist.train_images,
                mnist.train_labels,
                config,
            )
            for _ in run.steps(np.random.default_rng(config.seed)):
                pass
            blend_towards(model, base, config.keep_base)
            seconds.append(time.perf_counter() - clock)
            test_x, test_y = writer.x(writer.test), writer.y(writer.test)
            gains.append(accuracy(model, test_x, test_y) - accuracy(base, test_x, test_y))
            mnist_after.append(accuracy(model, mnist.test_images, mnist.test_labels))
        row = {
            "variant": label,
            "gain_points": round(100 * float(np.mean(gains)), 2),
            "mnist_after": round(100 * float(np.mean(mnist_after)), 2),
            "mnist_before": round(100 * mnist_before, 2),
            "seconds": round(float(np.mean(seconds)), 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"))
    parser.add_argument("--hard", type=float, default=0.97, help="writers read below this")
    parser.add_argument("--all", action="store_true", help="every font, not only the hard ones")
    parser.add_argument("--steps", type=int, default=FinetuneConfig.steps)
    parser.add_argument("--ablations", action="store_true")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("MNIST is needed: --data-dir or $MNIST_DIR")
    writers = choose_writers(args.hard, args.all)
    print(f"writers: {[w.name for w in writers]}", flush=True)
    if args.ablations:
        ablations(writers, load_mnist(args.data_dir))
        return 0
    env = {"CONVSCOPE_MNIST_DIR": args.data_dir, "CONVSCOPE_MNIST_DOWNLOAD": "false"}
    rows = []
    with local_server(None, env=env) as server:
        for writer in writers:
            row = through_api(server.url, writer, args.steps)
            print(json.dumps(row), flush=True)
            rows.append(row)
    gain = 100 * np.mean([r["after"] - r["before"] for r in rows])
    lost = 100 * np.mean([r["mnist_before"] - r["mnist_after"] for r in rows])
    print("| writer | their other digits, before -> after | MNIST test, before -> after ", end="")
    print("| POST to done |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['writer']} | {100 * r['before']:.1f}% -> {100 * r['after']:.1f}% "
            f"| {100 * r['mnist_before']:.2f}% -> {100 * r['mnist_after']:.2f}% "
            f"| {r['seconds_to_done']:.1f} s |"
        )
    print(
        f"| mean | {gain:+.1f} points | {-lost:+.2f} points | "
        f"{np.mean([r['seconds_to_done'] for r in rows]):.1f} s |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
