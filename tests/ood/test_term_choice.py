"""Which terms the digit score sums: the subset that catches the most non-digits at the
reference digits' quantile, chosen on drawings of calibration's own seed."""

from __future__ import annotations

import numpy as np

from server.cnn.architectures import mnist_cnn
from server.ood.calibrate import CalibrateConfig, best_terms, fit_scorer
from server.ood.measure import flagged
from server.ood.scorer import Term


def test_a_term_that_alone_separates_is_chosen_alone() -> None:
    rng = np.random.default_rng(0)
    sharp, noise = Term("energy"), Term("max_logit")
    reference = {sharp.name: rng.normal(0, 1, 2000), noise.name: rng.normal(0, 1, 2000)}
    others = {sharp.name: rng.normal(-8, 1, 500), noise.name: rng.normal(0, 3, 500)}
    assert best_terms([noise, sharp], reference, others, 0.02) == [sharp]


def test_terms_that_each_catch_half_are_summed() -> None:
    """Two terms, each low on its own half of the non-digits: together they catch both."""
    rng = np.random.default_rng(1)
    a, b = Term("energy"), Term("max_logit")
    reference = {a.name: rng.normal(0, 1, 4000), b.name: rng.normal(0, 1, 4000)}
    low, plain = rng.normal(-12, 1, 250), rng.normal(0, 1, 250)
    others = {a.name: np.concatenate([low, plain]), b.name: np.concatenate([plain, low])}
    chosen = best_terms([a, b], reference, others, 0.02)
    assert chosen == [a, b]
    total = reference[a.name] + reference[b.name]
    caught = flagged(others[a.name] + others[b.name], float(np.quantile(total, 0.02)))
    alone = flagged(others[a.name], float(np.quantile(reference[a.name], 0.02)))
    assert caught > alone


def test_the_served_threshold_is_the_quantile_of_the_chosen_sum() -> None:
    rng = np.random.default_rng(3)
    labels = np.arange(400) % 10
    images = (rng.random((400, 28, 28)) < 0.2 + 0.05 * labels[:, None, None]).astype(np.uint8)
    config = CalibrateConfig(fit=300, reference=100, outliers=60)
    calibration = fit_scorer(mnist_cnn(seed=1), images * 255, labels, config)
    chosen = calibration.scorer.terms
    assert chosen
    assert {t.name for t in chosen} <= {t.name for t in calibration.terms}
    assert len(calibration.terms) == 4  # fc1, relu1, relu2 and energy were the candidates
    total = np.sum([calibration.reference[t.name] for t in chosen], axis=0)
    np.testing.assert_allclose(calibration.combined, total)
    assert calibration.scorer.threshold == float(np.quantile(total, config.quantile))
