"""digit_score's parts against independent computations: float64 Mahalanobis, a pairwise AUROC,
the engine's own forward pass, and a round trip through the weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.cnn import load_model, save_model
from server.cnn.architectures import mnist_cnn
from server.inference import Predictor
from server.ood.calibrate import CalibrateConfig, fit_scorer
from server.ood.features import Source, feature_sources
from server.ood.measure import auroc
from server.ood.scorer import FALLBACK, FALLBACK_THRESHOLD, scorer_for
from server.ood.scores import ClassGaussians
from server.synth.nondigits import KINDS, LETTERS, nondigits


def test_mahalanobis_matches_float64_inverse_covariance() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 600)
    centres = rng.normal(0, 3, (4, 6))
    mixing = rng.normal(0, 1, (6, 6))
    features = centres[labels] + rng.normal(0, 1, (600, 6)) @ mixing  # (600, 6)
    ridge = 1e-3
    gaussians = ClassGaussians.fit(features.astype(np.float32), labels, 4, ridge=ridge)
    # independent: textbook pooled covariance, inverted by solve, one class at a time in float64
    means = np.stack([features[labels == k].mean(axis=0) for k in range(4)])
    pooled = sum(
        (features[labels == k] - means[k]).T @ (features[labels == k] - means[k]) for k in range(4)
    ) / len(features)
    pooled = pooled + ridge * np.trace(pooled) / 6 * np.eye(6)
    probe = rng.normal(0, 4, (50, 6))
    expected = np.stack(
        [
            np.einsum("nd,nd->n", probe - means[k], np.linalg.solve(pooled, (probe - means[k]).T).T)
            for k in range(4)
        ],
        axis=1,
    )  # (50, 4)
    np.testing.assert_allclose(gaussians.distances(probe), expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(gaussians.score(probe), -expected.min(axis=1) / 6, rtol=1e-3)


def previous_distances(gaussians: ClassGaussians, features: np.ndarray) -> np.ndarray:
    """ClassGaussians.distances before it kept -2 * means and their norms: the reference."""
    z = features.astype(np.float32) @ gaussians.whiten
    return (
        (z * z).sum(axis=1, keepdims=True)
        - 2.0 * z @ gaussians.means.T
        + (gaussians.means * gaussians.means).sum(axis=1)
    )


@pytest.mark.parametrize("rows", [1, 7])
def test_distances_and_channel_means_equal_the_previous_code_bit_for_bit(rows: int) -> None:
    rng = np.random.default_rng(4)
    labels = np.arange(300) % 10
    gaussians = ClassGaussians.fit(rng.normal(0, 2, (300, 32)).astype(np.float32), labels, 10)
    maps = np.maximum(rng.normal(0, 1, (rows, 28, 28, 32)), 0).astype(np.float32)
    features = Source("relu1", pooled=True).read(maps)
    np.testing.assert_array_equal(features, maps.mean(axis=(1, 2)))
    assert features.dtype == np.float32
    probe = np.concatenate([features, rng.normal(0, 3, (rows, 32))])  # float64 rows as well
    np.testing.assert_array_equal(gaussians.distances(probe), previous_distances(gaussians, probe))


def test_auroc_matches_pairwise_count() -> None:
    rng = np.random.default_rng(1)
    digits = rng.integers(0, 20, 80).astype(float)  # ties on purpose
    others = rng.integers(-5, 15, 60).astype(float)
    pairs = (digits[:, None] > others[None]).mean() + 0.5 * (digits[:, None] == others[None]).mean()
    assert auroc(digits, others) == pytest.approx(pairs)


def test_feature_sources_of_the_default_network() -> None:
    model = mnist_cnn(seed=0)
    assert feature_sources(model) == [
        Source("fc1", pooled=False),  # before relu3 and dropout, which feed fc2
        Source("relu1", pooled=True),
        Source("relu2", pooled=True),
    ]
    x = np.random.default_rng(2).random((3, 28, 28, 1), dtype=np.float32)
    logits, kept = model.forward_keeping(x, {"fc1", "relu2"})
    np.testing.assert_array_equal(logits, model.forward(x))
    assert kept["fc1"].shape == (3, 128)
    assert kept["relu2"].shape == (3, 14, 14, 64)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Predictor]:
    """An untrained network calibrated on synthetic digits: enough to test the plumbing."""
    rng = np.random.default_rng(3)
    labels = np.arange(400) % 10
    images = (rng.random((400, 28, 28)) < 0.2 + 0.05 * labels[:, None, None]).astype(np.uint8)
    model = mnist_cnn(seed=1)
    config = CalibrateConfig(fit=300, reference=100, outliers=0)  # every term summed
    calibration = fit_scorer(model, images * 255, labels, config)
    entry, extras = calibration.scorer.stored()
    path = tmp_path_factory.mktemp("ood") / "calibrated.npz"
    save_model(path, model, {"digit_score": entry}, extras=extras)
    return path, Predictor.from_file(path)


def test_statistics_round_trip_through_the_weights_file(
    calibrated: tuple[Path, Predictor],
) -> None:
    path, predictor = calibrated
    loaded = load_model(path)
    assert set(loaded.extras) == {
        f"digit_score/{layer}/{part}"
        for layer in ("fc1", "relu1", "relu2")
        for part in ("whiten", "means")
    }
    again = scorer_for(loaded.metadata, loaded.extras)
    assert again.method == predictor.scorer.method
    assert "mahalanobis(fc1)" in again.method
    assert again.method.endswith("energy")
    x = np.random.default_rng(4).random((5, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(
        again.forward(loaded.model, x)[1], predictor.scorer.forward(predictor.model, x)[1]
    )


def test_explain_and_classify_agree(calibrated: tuple[Path, Predictor]) -> None:
    """The single-image trace and the batch pass give the same score and verdict."""
    _, predictor = calibrated
    images = np.random.default_rng(5).random((4, 28, 28), dtype=np.float32)
    classified = predictor.classify(images)
    for image, score, verdict in zip(
        images, classified.digit_scores, classified.is_digit, strict=True
    ):
        explained = predictor.explain(image, activations=False, saliency=False, target=None)
        assert explained.digit_score == pytest.approx(float(score), rel=1e-5, abs=1e-5)
        assert explained.is_digit == bool(verdict)


def test_a_file_without_statistics_falls_back_to_the_top_probability() -> None:
    scorer = scorer_for({}, {})
    assert scorer is FALLBACK
    assert scorer.threshold == FALLBACK_THRESHOLD
    logits = np.array([[10.0, 0, 0], [1.0, 1.0, 0.9]])
    np.testing.assert_array_equal(scorer.is_digit(scorer.score(logits, {})), [True, False])


def test_a_malformed_entry_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="missing"):
        scorer_for({"digit_score": {"terms": [{"kind": "energy"}]}}, {})


def test_nondigits_are_seeded_and_of_every_kind() -> None:
    first, again = nondigits(20, seed=7), nondigits(20, seed=7)
    assert [d.kind for d in first] == [KINDS[i % len(KINDS)] for i in range(20)]
    for a, b in zip(first, again, strict=True):
        assert a.png == b.png
        np.testing.assert_array_equal(a.image, b.image)
        assert a.image.shape == (28, 28)
        assert a.image.max() == pytest.approx(1.0)
    assert not set(LETTERS) & set("OoIlSZBgq")
