"""Scores of "how much like the training digits", higher = more digit-like, one per input."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from server.cnn import softmax


def top_probability(logits: np.ndarray) -> np.ndarray:
    """Maximum softmax probability (Hendrycks & Gimpel 2017): (N, K) -> (N,)."""
    return softmax(logits).max(axis=1)


def max_logit(logits: np.ndarray) -> np.ndarray:
    """The largest logit (Hendrycks et al. 2022): (N, K) -> (N,)."""
    return logits.max(axis=1)


def energy(logits: np.ndarray) -> np.ndarray:
    """Negative free energy, logsumexp of the logits (Liu et al. 2020): (N, K) -> (N,)."""
    top = logits.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]


@dataclass(frozen=True)
class ClassGaussians:
    """Class-conditional Gaussians with one shared covariance (Lee et al. 2018), whitened.

    `whiten` (D, D) maps a feature so the shared covariance becomes the identity, and `means`
    (K, D) are the class means in that space: the Mahalanobis distance to class k is then a
    plain Euclidean one, ||f @ whiten - means[k]||.
    """

    whiten: np.ndarray  # (D, D)
    means: np.ndarray  # (K, D), whitened
    # Derived once, read-only, so a request pays for neither: -2 * means, transposed as means.T
    # is (an exact scaling: the same sums as -2 * z @ means.T), and each mean's squared norm.
    _minus_twice_means_t: np.ndarray = field(init=False, repr=False, compare=False)  # (D, K)
    _means_squared: np.ndarray = field(init=False, repr=False, compare=False)  # (K,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_minus_twice_means_t", (-2.0 * self.means).T)
        object.__setattr__(self, "_means_squared", (self.means * self.means).sum(axis=1))

    @classmethod
    def fit(
        cls, features: np.ndarray, labels: np.ndarray, classes: int, ridge: float = 1e-3
    ) -> ClassGaussians:
        """Means per class and the pooled within-class covariance, in float64; `ridge` times the
        mean variance is added to the diagonal so units that never fire keep it invertible."""
        f = features.astype(np.float64)  # (N, D)
        missing = sorted(set(range(classes)) - set(np.unique(labels).tolist()))
        if missing:
            raise ValueError(f"no examples of classes {missing} to fit their Gaussians")
        means = np.stack([f[labels == k].mean(axis=0) for k in range(classes)])  # (K, D)
        centred = f - means[labels]  # (N, D)
        covariance = centred.T @ centred / len(f)  # (D, D)
        covariance += (
            ridge
            * max(float(np.trace(covariance)) / len(covariance), 1e-12)
            * np.eye(len(covariance))
        )
        values, vectors = np.linalg.eigh(covariance)
        whiten = vectors / np.sqrt(values)  # (D, D): whiten.T @ covariance @ whiten = I
        return cls(whiten.astype(np.float32), (means @ whiten).astype(np.float32))

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to every class mean: (N, D) -> (N, K).

        ||z||^2 - 2 z.m + ||m||^2, added in that order, in place: three temporaries fewer."""
        z = np.asarray(features, dtype=np.float32) @ self.whiten  # (N, D)
        distances = z @ self._minus_twice_means_t  # (N, K)
        distances += (z * z).sum(axis=1, keepdims=True)
        distances += self._means_squared
        return distances

    def score(self, features: np.ndarray) -> np.ndarray:
        """Minus the squared distance to the nearest class mean, per feature dimension: (N,)."""
        return -self.distances(features).min(axis=1) / self.means.shape[1]
