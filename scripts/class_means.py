#!/usr/bin/env python3
"""Write model_weights/explain/mnist_class_means.npz: the mean MNIST training image of each digit.

Counterfactuals pull their edits towards the target digit's mean image (a 30 KB file of ten
28x28 averages, not MNIST itself). Deterministic: re-running it rewrites the same means.

    python scripts/class_means.py --data-dir ../shared/mnist
"""

from __future__ import annotations

import argparse
from pathlib import Path

from server.explain.counterfactual import class_means, save_class_means
from server.training.mnist import default_data_dir, load_mnist

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument(
        "--out", type=Path, default=ROOT / "model_weights" / "explain" / "mnist_class_means.npz"
    )
    args = parser.parse_args()
    data = load_mnist(args.data_dir)
    means = class_means(data.train_images, data.train_labels)
    digest = data.checksums.get("train-images-idx3-ubyte", "")
    source = f"mean of each digit's MNIST training images (60,000; train-images MD5 {digest})"
    save_class_means(args.out, means, source)
    print(f"wrote {args.out}: means {means.shape}, ink per class {means.sum(axis=(1, 2)).round(1)}")


if __name__ == "__main__":
    main()
