"""`convscope train`: train a network on MNIST, fit its digit score, write model_weights/*.npz.

convscope train --epochs 15 --out model_weights/mnist_cnn.npz

Argument parsing only: the loop is server/training/train.py (the same concept, one level down).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.atlas.build import write_atlas
from server.cnn import save_model
from server.cnn.architectures import PRESETS
from server.cnn.spec import SpecError, validate_spec
from server.cores import available_cores
from server.ood.calibrate import CalibrateConfig, fit_scorer, stored
from server.training.mnist import default_data_dir, download_mnist, load_mnist
from server.training.train import TrainConfig, train


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="convscope train", description="Train the ConvScope CNN on MNIST."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="MNIST IDX files (default: $MNIST_DIR, then the user cache dir)",
    )
    parser.add_argument(
        "--download", action="store_true", help="fetch missing MNIST files into --data-dir first"
    )
    network = parser.add_mutually_exclusive_group()
    network.add_argument(
        "--arch", choices=sorted(PRESETS), default=defaults.arch, help="network preset"
    )
    network.add_argument(
        "--arch-file",
        type=Path,
        default=None,
        help="any network as layer-spec JSON (the weights file's architecture format)",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    parser.add_argument(
        "--validation",
        type=int,
        default=defaults.validation,
        help="training images held out to pick the best epoch",
    )
    parser.add_argument("--no-augment", action="store_true", help="train on MNIST as it is")
    parser.add_argument(
        "--strokes",
        type=int,
        default=defaults.strokes,
        help="pen-stroke digits (server/synth) added to the training set",
    )
    parser.add_argument(
        "--outliers",
        type=int,
        default=defaults.outliers,
        help="non-digit drawings (server/synth) trained toward no class: outlier exposure",
    )
    parser.add_argument(
        "--init", default="", help="start from this weights file (same architecture): fine-tune"
    )
    parser.add_argument("--out", type=Path, default=Path("model_weights/mnist_cnn.npz"))
    parser.add_argument(
        "--no-atlas", action="store_true", help="skip the atlas (convscope atlas writes it later)"
    )
    parser.add_argument(
        "--lanes",
        type=int,
        default=available_cores(),
        help="threads sharing each training step, BLAS on one thread each (default: the cores "
        "this process may use)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.lanes < 1:
        parser.error(f"--lanes must be >= 1, got {args.lanes}")
    return args


def read_arch_file(path: Path) -> dict[str, Any]:
    """The network of --arch-file, checked before any training; SpecError says what is wrong."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError([f"cannot read it: {exc.strerror or exc}"]) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError([f"not valid JSON: {exc}"]) from exc
    problems = validate_spec(spec, input_shape=(28, 28, 1), num_classes=10)
    if problems:
        raise SpecError(problems)
    return dict(spec)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    arch_spec = None
    if args.arch_file is not None:
        try:
            arch_spec = read_arch_file(args.arch_file)
        except SpecError as exc:
            lines = "".join(f"\n  {problem}" for problem in exc.problems)
            print(f"convscope train: --arch-file {args.arch_file}:{lines}", file=sys.stderr)
            return 2
    data_dir = args.data_dir or default_data_dir()
    if args.download:
        download_mnist(data_dir, show_progress=not args.quiet)
    config = TrainConfig(
        arch=args.arch if arch_spec is None else str(args.arch_file),
        arch_spec=arch_spec,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        limit=args.limit,
        validation=args.validation,
        augment=not args.no_augment,
        strokes=args.strokes,
        outliers=args.outliers,
        init=args.init,
    )
    data = load_mnist(data_dir)
    model, metadata = train(data, config, show_progress=not args.quiet, lanes=args.lanes)
    # every trained model carries its digit_score statistics, as `convscope calibrate` fits them
    fitting = CalibrateConfig(seed=config.seed).fitting(len(data.train_images))
    calibration = fit_scorer(model, data.train_images, data.train_labels, fitting)
    digit_score, extras = stored(calibration, fitting)
    save_model(args.out, model, {**metadata, **digit_score}, extras=extras)
    summary: dict[str, Any] = {
        "out": str(args.out),
        "test_accuracy": metadata["test_accuracy"],
        "best_epoch": metadata["best_epoch"],
    }
    if not args.no_atlas:  # as calibration: every trained model carries its atlas
        summary["atlas"] = write_atlas(
            args.out, model, data.test_images, data.test_labels, config.seed
        )["atlas"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
