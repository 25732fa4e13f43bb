"""The digit_score figures: each term alone and combined, on MNIST test vs drawn non-digits.

MNIST_DIR=/work/shared/mnist .venv/bin/python scripts/digit_score_table.py WEIGHTS.npz

Each single term, and every term summed, is thresholded at the same quantile of its own
reference digits as the served combination (augmented MNIST training digits the Gaussians never
saw); the served combination is the terms calibration chose on non-digits of its own seed.
Sets: MNIST test; the non-digits of server.synth.nondigits (seed 1, never used for fitting;
training's outlier exposure draws seeds 100 and up, calibration's 200 and up); augmented MNIST
test; typed digits rendered from DejaVu fonts through the upload path (not handwriting: a
harder, typed stand-in); and server.synth's handwriting proxy (500 of each family, seed 1000).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.cnn import load_model
from server.ood.calibrate import CalibrateConfig, fit_scorer
from server.ood.measure import auroc, flagged
from server.ood.scorer import FALLBACK, DigitScorer
from server.synth import png, proxy_set, through_api
from server.synth.nondigits import FONT_FILES, KINDS, font, nondigits
from server.training.augment import AugmentConfig, augment
from server.training.mnist import default_data_dir, load_mnist


def typed_digits(count: int, seed: int) -> np.ndarray:
    """Digits typed in DejaVu faces at random size and place, read through the upload path."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        side = int(rng.integers(64, 300))
        big = side * 4
        canvas = Image.new("L", (big, big), 255)
        face = font(
            FONT_FILES[int(rng.integers(len(FONT_FILES)))], int(big * rng.uniform(0.3, 0.7))
        )
        xy = (big * rng.uniform(0.4, 0.6), big * rng.uniform(0.4, 0.6))
        ImageDraw.Draw(canvas).text(xy, str(index % 10), fill=0, font=face, anchor="mm")
        small = np.asarray(canvas.resize((side, side), Image.Resampling.BOX))
        images.append(through_api(png(small)))
    return np.stack(images)  # (N, 28, 28)


def handwriting_proxy() -> np.ndarray:
    """The handwriting proxy of server.synth: 500 digits of each family (strokes, fonts, hands;
    without a handwriting font installed, strokes and hands)."""
    return proxy_set(500, seed=1000).images


def scores_of(scorer: DigitScorer, model, images: np.ndarray) -> tuple[np.ndarray, dict]:
    """Each term's standardised value and the combined score, in batches of 500."""
    per_term: dict[str, list[np.ndarray]] = {t.name: [] for t in scorer.terms}
    fallback = []
    for start in range(0, len(images), 500):
        x = images[start : start + 500, ..., None].astype(np.float32)
        logits, outputs = model.forward_keeping(x, scorer.layers)
        for term in scorer.terms:
            per_term[term.name].append(term.value(logits, outputs))
        fallback.append(FALLBACK.score(logits, outputs))
    values = {k: np.concatenate(v) for k, v in per_term.items()}
    return np.concatenate(fallback), values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--nondigits", type=int, default=2000)
    args = parser.parse_args()
    model = load_model(args.weights).model
    data = load_mnist(args.data_dir or default_data_dir())
    calibration = fit_scorer(model, data.train_images, data.train_labels, CalibrateConfig())
    scorer = calibration.scorer
    every = DigitScorer(calibration.terms, threshold=0.0)  # every candidate term, chosen or not
    drawn = nondigits(args.nondigits, seed=1)
    kinds = np.array([d.kind for d in drawn])
    sets = {
        "mnist": data.test_images.astype(np.float32) / 255.0,
        "non-digits": np.stack([d.image for d in drawn]),
        "aug-mnist": augment(
            data.test_images[:3000].astype(np.float32) / 255.0,
            np.random.default_rng(3),
            AugmentConfig(),
        ),
        "typed": typed_digits(600, seed=5),
    }
    sets["proxy"] = handwriting_proxy()
    results = {name: scores_of(every, model, images) for name, images in sets.items()}
    q = CalibrateConfig().quantile
    rows: list[tuple[str, dict[str, np.ndarray], float]] = [
        ("top softmax probability >= 0.9 (fallback)", {k: r[0] for k, r in results.items()}, 0.9)
    ]
    for name, reference in calibration.reference.items():
        rows.append((name, {k: r[1][name] for k, r in results.items()}, np.quantile(reference, q)))
    rows.append(
        (
            "every term summed: " + every.method,
            {k: sum(r[1].values()) for k, r in results.items()},
            float(np.quantile(sum(calibration.reference.values()), q)),
        )
    )
    rows.append(
        (
            "chosen (served): " + scorer.method,
            {k: sum(r[1][t.name] for t in scorer.terms) for k, r in results.items()},
            scorer.threshold,
        )
    )
    header = "| score | AUROC | non-digits flagged | " + " | ".join(
        f"{k} flagged" for k in sets if k != "non-digits"
    )
    print(header + " |")
    print("|" + "---|" * (3 + len(sets) - 1))
    for name, scores, threshold in rows:
        cells = [f"{auroc(scores['mnist'], scores['non-digits']):.4f}"]
        cells.append(f"{flagged(scores['non-digits'], threshold):.1%}")
        cells += [f"{flagged(scores[k], threshold):.1%}" for k in sets if k != "non-digits"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    combined = rows[-1][1]["non-digits"]
    print("\nnon-digits flagged by kind (chosen, served):")
    for kind in KINDS:
        print(f"  {kind:9s} {flagged(combined[kinds == kind], scorer.threshold):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
