"""`convscope evaluate`: test accuracy and confusion matrix of a weights file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from server.cnn import load_model
from server.training.evaluation import confusion_matrix, predict_logits
from server.training.mnist import default_data_dir, load_mnist


def format_confusion(matrix: np.ndarray) -> str:
    """A fixed-width table: rows are true labels, columns predictions."""
    header = "true\\pred " + " ".join(f"{c:>5}" for c in range(matrix.shape[1]))
    rows = [f"{r:>9} " + " ".join(f"{v:>5}" for v in row) for r, row in enumerate(matrix)]
    return "\n".join([header, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope evaluate", description=__doc__)
    parser.add_argument(
        "weights", type=Path, nargs="?", default=Path("model_weights/mnist_cnn.npz")
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="default: $MNIST_DIR, then the user cache dir"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    args = parser.parse_args(argv)
    model = load_model(args.weights).model
    data = load_mnist(args.data_dir or default_data_dir())
    predictions = predict_logits(model, data.test_images).argmax(axis=1)
    accuracy = float((predictions == data.test_labels).mean())
    matrix = confusion_matrix(data.test_labels, predictions)
    if args.json:
        print(
            json.dumps(
                {
                    "weights": str(args.weights),
                    "test_accuracy": accuracy,
                    "confusion_matrix": matrix.tolist(),
                }
            )
        )
    else:
        print(
            f"{args.weights}: test accuracy {accuracy:.4%} "
            f"({int((predictions == data.test_labels).sum())}/{len(predictions)})"
        )
        print(format_confusion(matrix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
