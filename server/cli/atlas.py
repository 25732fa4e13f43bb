"""`convscope atlas WEIGHTS`: what each filter looks for and where the test digits sit, computed
from MNIST's test set and written beside the weights (atlas/<stem>.npz).

convscope atlas model_weights/mnist_cnn.npz --data-dir $MNIST_DIR

Argument parsing only: the work is server/atlas/build.py.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from server.atlas.build import write_atlas
from server.cnn import load_model
from server.training.mnist import default_data_dir, load_mnist


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="convscope atlas", description=__doc__.split("\n")[0].strip("`")
    )
    parser.add_argument("weights", type=Path, nargs="+", help="weights files to map")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="default: $MNIST_DIR, then the user cache dir"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = load_mnist(args.data_dir or default_data_dir())
    for path in args.weights:
        model = load_model(path).model
        print(
            json.dumps(
                {
                    "weights": str(path),
                    **write_atlas(path, model, data.test_images, data.test_labels, args.seed),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
