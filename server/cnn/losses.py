"""Softmax and the fused, numerically stable softmax + cross-entropy loss."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log(softmax(z)) computed as z - max - log(sum(exp(z - max)))."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis; stable for any logit magnitude."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, smoothing: float = 0.0
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy over the batch and its gradient w.r.t. the logits.

    logits (N, K), integer labels (N,). With label smoothing e the target is (1 - e) * onehot
    + e / K (as torch's `label_smoothing`); the fused gradient is (softmax - target) / N.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"logits (N, K) and labels (N,) expected, got {logits.shape}, {labels.shape}"
        )
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {smoothing}")
    n, k = logits.shape
    log_probs = log_softmax(logits)
    rows = np.arange(n)
    target = np.full_like(log_probs, smoothing / k)  # (N, K)
    target[rows, labels] += 1.0 - smoothing
    loss = float(-(target * log_probs).sum(axis=1).mean())
    grad = np.exp(log_probs) - target
    grad /= n
    return loss, grad.astype(logits.dtype, copy=False)


def uniform_cross_entropy(logits: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy to the uniform distribution, and its gradient w.r.t. the logits.

    Outlier exposure (Hendrycks et al. 2019) pulls a non-digit's reading toward "no class more
    than another" with it; logits (N, K), the fused gradient is (softmax - 1/K) / N.
    """
    if logits.ndim != 2 or len(logits) == 0:
        raise ValueError(f"logits (N, K) with N > 0 expected, got {logits.shape}")
    n, k = logits.shape
    log_probs = log_softmax(logits)
    loss = float(-log_probs.mean(axis=1).mean())
    grad = np.exp(log_probs) - 1.0 / k
    grad /= n
    return loss, grad.astype(logits.dtype, copy=False)
