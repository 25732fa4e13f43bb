"""How well a score tells digits from non-digits: AUROC and the share called "not a digit"."""

from __future__ import annotations

import numpy as np


def auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """P(a random digit scores above a random non-digit), ties counted half (Mann-Whitney)."""
    scores = np.concatenate([digits, others]).astype(np.float64)
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = scores[order]
    # ties share the mean of their ranks
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        if end - start > 1:
            ranks[order[start:end]] = (start + 1 + end) / 2
    n, m = len(digits), len(others)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * m))


def flagged(scores: np.ndarray, threshold: float) -> float:
    """The share of inputs scored below the threshold: called "not a digit"."""
    return float(np.mean(scores < threshold))
