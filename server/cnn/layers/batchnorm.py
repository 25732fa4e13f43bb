"""Batch normalisation over the last axis: per channel of a map, per unit of a vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn.layers.base import Array, Layer, Params

WIDE = 512  # column sums run over rows this wide (docs/speed.md, "Batch norm")


def column_sums(rows: Array, dtype: type | None = None) -> Array:
    """rows.sum(axis=0) for (M, C) rows: over a (M/k, k*C) view then its k rows, since numpy
    sums long rows much faster than a few narrow columns (C = 8 channels, M = 50,176)."""
    m, c = rows.shape
    k = max(1, WIDE // c)
    head = m - m % k
    total = rows[:head].reshape(-1, k * c).sum(axis=0, dtype=dtype).reshape(k, c).sum(axis=0)
    if head < m:
        total += rows[head:].sum(axis=0, dtype=dtype)
    return total


@dataclass(frozen=True)
class NormCache:
    """What backward needs: the normalised input and 1/std, and which statistics made them."""

    x_hat: Array  # (M, C): the input normalised, flattened to rows of channels
    inv_std: Array  # (C,)
    batch_statistics: bool  # True: the mean and variance depended on the batch itself
    input_shape: tuple[int, ...]


class BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (the last axis).

    Training uses the batch's own mean and (biased) variance and moves the running statistics
    towards them: running = (1 - momentum) * running + momentum * batch, with the unbiased
    variance, as PyTorch does. Evaluation uses the running statistics and writes nothing, so
    threads may share the layer; training is single-threaded.
    """

    kind = "batchnorm"
    mixes_batch = True

    def __init__(
        self, name: str, num_features: int, momentum: float = 0.1, eps: float = 1e-5
    ) -> None:
        super().__init__(name)
        if num_features < 1:
            raise ValueError(f"{name}: num_features must be >= 1, got {num_features}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum}")
        if not eps > 0.0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        self.num_features = num_features
        self.momentum = momentum
        self.eps = eps
        self.params["gamma"] = np.ones(num_features, dtype=np.float32)
        self.params["beta"] = np.zeros(num_features, dtype=np.float32)
        self.buffers["running_mean"] = np.zeros(num_features, dtype=np.float32)
        self.buffers["running_var"] = np.ones(num_features, dtype=np.float32)

    def forward(
        self, x: Array, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Array, Any]:
        if x.shape[-1] != self.num_features:
            raise ValueError(
                f"{self.name}: expected {self.num_features} channels on the last axis, "
                f"got {x.shape}"
            )
        rows = x.reshape(-1, self.num_features)  # (M, C): N*H*W rows for maps, N for vectors
        if training:
            x_hat, var = self._batch_statistics(rows)  # x_hat holds x - mean for now
        else:
            x_hat = rows - self.buffers["running_mean"].astype(x.dtype)
            var = self.buffers["running_var"].astype(x.dtype)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)  # (C,)
        x_hat *= inv_std  # (M, C)
        gamma = self.params["gamma"].astype(x.dtype, copy=False)
        beta = self.params["beta"].astype(x.dtype, copy=False)
        out = x_hat * gamma
        out += beta
        return out.reshape(x.shape), NormCache(x_hat, inv_std, training, x.shape)

    def _batch_statistics(self, rows: Array) -> tuple[Array, Array]:
        """rows minus the batch's mean (M, C), and the biased variance (C,), after updating the
        running statistics."""
        count = rows.shape[0]
        if count < 2:
            raise ValueError(
                f"{self.name}: training needs more than one value per channel, got input "
                f"of {count} row(s); use a batch of 2 or more"
            )
        mean = column_sums(rows, np.float64) / count  # float64: sums over N*H*W values
        centred = rows - mean.astype(rows.dtype)
        var = column_sums(np.square(centred), np.float64) / count
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean[...] = (1 - m) * running_mean + m * mean
        running_var[...] = (1 - m) * running_var + m * var * (count / (count - 1))
        return centred, var.astype(rows.dtype)

    def backward(self, grad_out: Array, cache: Any) -> tuple[Array, Params]:
        c: NormCache = cache
        grad_rows = grad_out.reshape(-1, self.num_features)  # (M, C)
        grads: Params = {
            "gamma": column_sums(grad_rows * c.x_hat),
            "beta": column_sums(grad_rows),
        }
        scale = self.params["gamma"].astype(grad_out.dtype, copy=False) * c.inv_std  # (C,)
        if not c.batch_statistics:
            return (grad_rows * scale).reshape(c.input_shape), grads
        # The mean and variance depend on every row: subtract their share of the gradient,
        # gamma * (g - sum(g) / M - x_hat * sum(g * x_hat) / M) * inv_std, where the two sums
        # are the beta and gamma gradients already taken.
        count = grad_rows.shape[0]
        grad_in = c.x_hat * (grads["gamma"] / count)
        np.subtract(grad_rows, grad_in, out=grad_in)
        grad_in -= grads["beta"] / count
        grad_in *= scale
        return grad_in.reshape(c.input_shape), grads

    def config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}
