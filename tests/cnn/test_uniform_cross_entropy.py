"""Outlier exposure's loss: central differences, each class's cross-entropy averaged, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from server.cnn import softmax_cross_entropy, uniform_cross_entropy
from tests.cnn.test_layers_gradcheck import numerical_grad


@pytest.fixture
def logits() -> np.ndarray:
    return np.random.default_rng(5).normal(0, 3, (6, 10))


def test_gradient_matches_central_differences(logits: np.ndarray) -> None:
    _, grad = uniform_cross_entropy(logits)
    numeric = numerical_grad(lambda: uniform_cross_entropy(logits)[0], logits)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_loss_is_the_mean_of_the_cross_entropies_to_each_class(logits: np.ndarray) -> None:
    n, k = logits.shape
    per_class = [softmax_cross_entropy(logits, np.full(n, c))[0] for c in range(k)]
    assert uniform_cross_entropy(logits)[0] == pytest.approx(np.mean(per_class))


def test_equal_logits_are_its_minimum(logits: np.ndarray) -> None:
    flat = np.zeros_like(logits)
    loss, grad = uniform_cross_entropy(flat)
    assert loss == pytest.approx(np.log(logits.shape[1]))
    np.testing.assert_allclose(grad, 0.0, atol=1e-15)
    assert uniform_cross_entropy(logits)[0] > loss


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match=r"logits \(N, K\)"):
        uniform_cross_entropy(np.zeros((0, 10)))


def test_matches_torch_soft_target_cross_entropy(logits: np.ndarray) -> None:
    torch = pytest.importorskip("torch", reason="the parity extra (make install-parity)")
    t = torch.tensor(logits, requires_grad=True)
    target = torch.full_like(t, 1.0 / logits.shape[1])
    expected = torch.nn.functional.cross_entropy(t, target)
    expected.backward()
    loss, grad = uniform_cross_entropy(logits)
    assert loss == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-12)
