"""Label smoothing in softmax_cross_entropy: central differences, a by-hand target, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from server.cnn import log_softmax, softmax_cross_entropy


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    return rng.normal(0, 3, (7, 10)), rng.integers(0, 10, 7)


@pytest.mark.parametrize("smoothing", [0.0, 0.05, 0.3])
def test_gradient_matches_central_differences(
    batch: tuple[np.ndarray, np.ndarray], smoothing: float
) -> None:
    logits, labels = batch
    _, grad = softmax_cross_entropy(logits, labels, smoothing)
    numeric = np.zeros_like(logits)
    eps = 1e-6
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (
            softmax_cross_entropy(up, labels, smoothing)[0]
            - softmax_cross_entropy(down, labels, smoothing)[0]
        ) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_loss_is_the_mix_of_nll_and_uniform_cross_entropy(
    batch: tuple[np.ndarray, np.ndarray],
) -> None:
    logits, labels = batch
    log_probs = log_softmax(logits)
    nll = -log_probs[np.arange(len(labels)), labels].mean()
    uniform = -log_probs.mean(axis=1).mean()
    loss, _ = softmax_cross_entropy(logits, labels, 0.2)
    assert loss == pytest.approx(0.8 * nll + 0.2 * uniform)
    assert softmax_cross_entropy(logits, labels)[0] == pytest.approx(nll)


@pytest.mark.parametrize("smoothing", [-0.1, 1.0])
def test_smoothing_out_of_range_is_refused(
    batch: tuple[np.ndarray, np.ndarray], smoothing: float
) -> None:
    with pytest.raises(ValueError, match="label smoothing"):
        softmax_cross_entropy(*batch, smoothing)


def test_matches_torch_label_smoothing(batch: tuple[np.ndarray, np.ndarray]) -> None:
    torch = pytest.importorskip("torch", reason="the parity extra (make install-parity)")
    logits, labels = batch
    t = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(t, torch.tensor(labels), label_smoothing=0.1)
    expected.backward()
    loss, grad = softmax_cross_entropy(logits, labels, 0.1)
    assert loss == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-12)
