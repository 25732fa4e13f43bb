"""Which test digits the atlas holds, and a 2-D map of them (t-SNE, offline; PCA without
scikit-learn)."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger("convscope")

MIN_TSNE = 100  # t-SNE's perplexity of 30 needs many more neighbours than that
PER_CLASS = 250  # a stratified sample: 2,500 digits, plus every misread one and every example


def held_digits(
    labels: np.ndarray, predicted: np.ndarray, examples: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Sorted test indices: a sample of each class, every misread digit, every example."""
    rng = np.random.default_rng(seed)
    sample = [
        rng.choice(np.flatnonzero(labels == digit), size=PER_CLASS, replace=False)
        for digit in range(10)
        if (labels == digit).sum() >= PER_CLASS
    ]
    misread = np.flatnonzero(labels != predicted)
    return np.unique(np.concatenate([*sample, misread, examples.ravel()])).astype(np.int32)


def pca(features: np.ndarray) -> np.ndarray:
    """(M, D) -> (M, 2): the two directions of largest variance."""
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def embed(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """(M, D) -> (M, 2) in [-1, 1], and the method: t-SNE when scikit-learn is installed (the
    `atlas` extra), else PCA."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        logger.warning("scikit-learn is not installed (pip install '.[atlas]'): a PCA map instead")
        TSNE = None
    if TSNE is None or len(features) < MIN_TSNE:
        xy, method = pca(features), "pca"
    else:
        tsne = TSNE(n_components=2, perplexity=30.0, init="pca", random_state=seed)
        xy, method = tsne.fit_transform(features.astype(np.float64)), "tsne"
    xy = xy - xy.mean(axis=0)
    return (xy / max(float(np.abs(xy).max()), 1e-12)).astype(np.float32), method
