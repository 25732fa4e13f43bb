"""`convscope calibrate WEIGHTS`: fit the digit_score statistics on MNIST, store them in the file.

convscope calibrate model_weights/mnist_cnn.npz --data-dir $MNIST_DIR

Argument parsing only: the fitting is server/ood/calibrate.py (the same concept, one level down).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from server.ood.calibrate import CalibrateConfig, calibrate_file
from server.training.mnist import default_data_dir, load_mnist


def main(argv: Sequence[str] | None = None) -> int:
    defaults = CalibrateConfig()
    parser = argparse.ArgumentParser(
        prog="convscope calibrate", description=__doc__.split("\n")[0].strip("`")
    )
    parser.add_argument("weights", type=Path, nargs="+", help="weights files to calibrate")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="default: $MNIST_DIR, then the user cache dir"
    )
    parser.add_argument("--fit", type=int, default=defaults.fit)
    parser.add_argument("--reference", type=int, default=defaults.reference)
    parser.add_argument("--quantile", type=float, default=defaults.quantile)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    if not 0.0 < args.quantile < 0.5:
        parser.error(f"--quantile must be in (0, 0.5), got {args.quantile}")
    config = replace(
        defaults, fit=args.fit, reference=args.reference, quantile=args.quantile, seed=args.seed
    )
    data = load_mnist(args.data_dir or default_data_dir())
    for path in args.weights:
        calibration = calibrate_file(path, data.train_images, data.train_labels, config)
        scorer = calibration.scorer
        summary = {"weights": str(path), "method": scorer.method, "threshold": scorer.threshold}
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
