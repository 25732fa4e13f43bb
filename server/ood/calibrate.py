"""Fit the digit_score statistics on MNIST and store them in a weights file (`convscope
calibrate`, server/cli/calibrate.py, and the end of `convscope train`).

The Gaussians are fitted on MNIST training digits as they are and as training augments them
(other writers' digits look more like the augmented ones); the threshold is the `quantile` of
the combined score on other augmented training digits, so about that share of digit-like
input is called "not a digit". Which terms are summed is chosen on drawn non-digits of a seed
of calibration's own: a network trained with outlier exposure has an energy that alone beats
the sum, whose Gaussian terms then only add false alarms.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from server import preprocess
from server.cnn import Sequential, load_model, save_model
from server.ood.features import Source, feature_sources
from server.ood.measure import auroc, flagged
from server.ood.scorer import EXTRA_PREFIX, DigitScorer, Term
from server.ood.scores import ClassGaussians, energy
from server.synth import stroke_set
from server.synth.nondigits import nondigits
from server.training.augment import AugmentConfig, augment

CLASSES = 10


@dataclass(frozen=True)
class CalibrateConfig:
    """Every fitting default in one place; the file stores it beside the statistics."""

    fit: int = 10000  # training images the Gaussians see, each plain and augmented
    reference: int = 5000  # other training images, augmented: the threshold's reference
    quantile: float = 0.01  # share of the reference digits scored below the threshold
    seed: int = 0
    straight_ones: int = 1000  # ruler-straight vertical 1s, as a mouse or the keyboard draws them
    strokes: int = (
        2000  # pen-stroke digits as `convscope train` adds them (its seed, not the proxy's)
    )
    max_features: int = 1024  # a wider feature vector is left out (its covariance is too big)
    outliers: int = 1000  # non-digit drawings the terms are chosen on (0: every term is summed)

    def fitting(self, count: int) -> CalibrateConfig:
        """These defaults, shrunk to fit `count` images (two thirds fit, a third reference)."""
        fit = min(self.fit, count * 2 // 3)
        return replace(
            self,
            fit=fit,
            reference=min(self.reference, count - fit),
            strokes=min(self.strokes, count // 10),
        )


OUTLIER_SEED = 200  # + seed % 100: apart from training's (100 + seed) and the measurement's (1)


@dataclass(frozen=True)
class Calibration:
    """The fitted scorer, every candidate term (standardised) and each one's values on the
    reference digits."""

    scorer: DigitScorer
    terms: tuple[Term, ...]  # every candidate, chosen or not
    reference: dict[str, np.ndarray]  # term name -> (R,)
    combined: np.ndarray  # (R,): the chosen terms' sum


def read_features(
    model: Sequential, images: np.ndarray, sources: list[Source], batch_size: int = 500
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits (N, K) and each source's features (N, D) for (N, 28, 28) images in [0, 1]."""
    names = {s.layer for s in sources}
    logits, features = [], {s.layer: [] for s in sources}  # type: ignore[var-annotated]
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size, ..., None].astype(np.float32)  # (B, 28, 28, 1)
        batch_logits, outputs = model.forward_keeping(x, names)
        logits.append(batch_logits)
        for s in sources:
            features[s.layer].append(s.read(outputs[s.layer]))
    return np.concatenate(logits), {k: np.concatenate(v) for k, v in features.items()}


def straight_ones(count: int, rng: np.random.Generator) -> np.ndarray:
    """Vertical strokes (half plumb, half within 3 degrees) of many widths, read as uploads.

    MNIST's writers never drew a 1 this straight, so without them the pad's plainest 1 (one
    straight stroke) has channel statistics unlike any training digit's.
    """
    images = []
    for _ in range(count):
        side = int(rng.integers(80, 320))
        img = Image.new("L", (side, side), 255)
        top, bottom = side * rng.uniform(0.05, 0.3), side * rng.uniform(0.7, 0.95)
        x = float(int(side * rng.uniform(0.3, 0.7)))
        plumb = rng.random() < 0.5  # exactly vertical: one crisp column, as the keyboard draws
        lean = 0.0 if plumb else (bottom - top) * np.tan(np.radians(rng.uniform(-3, 3)))
        width = max(1, int(side * rng.uniform(0.02, 0.12)))
        ImageDraw.Draw(img).line([(x, top), (x + lean, bottom)], fill=0, width=width)
        images.append(preprocess.digit_from_gray(np.asarray(img)))
    return np.stack(images) if images else np.zeros((0, 28, 28), np.float32)


def fit_scorer(
    model: Sequential, images: np.ndarray, labels: np.ndarray, config: CalibrateConfig
) -> Calibration:
    """Fit the Gaussians, standardise each term and place the threshold; images uint8 0..255."""
    if config.fit + config.reference > len(images):
        raise ValueError(
            f"fit ({config.fit}) + reference ({config.reference}) exceed {len(images)} images"
        )
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(images))
    fit_at, reference_at = order[: config.fit], order[config.fit : config.fit + config.reference]
    plain = images[fit_at].astype(np.float32) / 255.0  # (F, 28, 28)
    ones = straight_ones(config.straight_ones, rng)  # (S, 28, 28)
    # the styles MNIST lacks that training adds (server.training.train.with_strokes): a model that
    # learnt them must not call them "not a digit", as fitting on MNIST alone did (docs/training.md)
    strokes = stroke_set(config.strokes, seed=config.seed % 100, via_png=False)
    fit_images = np.concatenate([plain, augment(plain, rng, AugmentConfig()), ones, strokes.images])
    fit_labels = np.concatenate(
        [labels[fit_at], labels[fit_at], np.ones(len(ones)), strokes.labels]
    ).astype(np.int64)  # (2F + S + K,)
    reference = augment(images[reference_at].astype(np.float32) / 255.0, rng, AugmentConfig())

    sources = [s for s in feature_sources(model) if s.width(model) <= config.max_features]
    _, fit_features = read_features(model, fit_images, sources)
    ref_logits, ref_features = read_features(model, reference, sources)

    fitted = [
        Term(
            "mahalanobis",
            source=source,
            gaussians=ClassGaussians.fit(fit_features[source.layer], fit_labels, CLASSES),
        )
        for source in sources
    ]
    fitted.append(Term("energy"))
    raw = [raw_value(term, ref_logits, ref_features) for term in fitted]  # each (R,)
    terms = [standardised(term, values) for term, values in zip(fitted, raw, strict=True)]
    values = {
        term.name: (values - term.center) / term.scale
        for term, values in zip(terms, raw, strict=True)
    }
    chosen = terms
    if config.outliers > 0:
        drawn = nondigits(config.outliers, seed=OUTLIER_SEED + config.seed % 100)
        others = np.stack([d.image for d in drawn])  # (O, 28, 28)
        out_logits, out_features = read_features(model, others, sources)
        out_values = {
            term.name: (raw_value(term, out_logits, out_features) - term.center) / term.scale
            for term in terms
        }
        chosen = best_terms(terms, values, out_values, config.quantile)
    combined = np.sum([values[term.name] for term in chosen], axis=0)  # (R,)
    threshold = float(np.quantile(combined, config.quantile))
    return Calibration(DigitScorer(tuple(chosen), threshold), tuple(terms), values, combined)


def raw_value(term: Term, logits: np.ndarray, features: dict[str, np.ndarray]) -> np.ndarray:
    """A term's unstandardised score (N,) from logits (N, K) and read_features' features."""
    if term.source is None:
        return energy(logits)
    assert term.gaussians is not None, "a mahalanobis term is fitted"
    return term.gaussians.score(features[term.source.layer])


def best_terms(
    terms: list[Term],
    reference: dict[str, np.ndarray],
    others: dict[str, np.ndarray],
    quantile: float,
) -> list[Term]:
    """The sum of terms that calls the most non-digits "not a digit" at the threshold that
    calls `quantile` of the reference digits so; ties go to the higher AUROC, then to fewer
    terms. Each term's values are standardised: reference (R,), others (O,) by term name."""

    def merit(subset: tuple[Term, ...]) -> tuple[float, float, int]:
        digits = np.sum([reference[t.name] for t in subset], axis=0)
        drawn = np.sum([others[t.name] for t in subset], axis=0)
        caught = flagged(drawn, float(np.quantile(digits, quantile)))
        return caught, auroc(digits, drawn), -len(subset)

    sizes = range(1, len(terms) + 1)
    subsets = [subset for size in sizes for subset in itertools.combinations(terms, size)]
    best = max(subsets, key=merit)
    return list(best)


def standardised(term: Term, raw: np.ndarray) -> Term:
    """The term centred on its median over the reference digits and scaled by their spread."""
    spread = float(raw.std())
    return replace(term, center=float(np.median(raw)), scale=spread if spread > 0 else 1.0)


def calibrate_file(
    path: Path, images: np.ndarray, labels: np.ndarray, config: CalibrateConfig
) -> Calibration:
    """Fit on `images` and rewrite the weights file with the statistics and threshold."""
    loaded = load_model(path)
    calibration = fit_scorer(loaded.model, images, labels, config)
    metadata, extras = stored(calibration, config)
    kept = {k: v for k, v in loaded.extras.items() if not k.startswith(EXTRA_PREFIX)}
    save_model(path, loaded.model, {**loaded.metadata, **metadata}, extras={**kept, **extras})
    return calibration


def stored(
    calibration: Calibration, config: CalibrateConfig
) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """The metadata entry (with how it was fitted) and the extra arrays for save_model."""
    entry, extras = calibration.scorer.stored()
    return {"digit_score": {**entry, "fitted": asdict(config)}}, extras
