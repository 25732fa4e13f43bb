"""Optimizers and learning-rate schedules; the only code that changes parameters."""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]


class Optimizer:
    """Updates a fixed dict of parameter arrays in place from a dict of gradients."""

    def __init__(self, params: Params, lr: float, weight_decay: float = 0.0) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.params = params
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = 0

    def _decays(self, key: str) -> bool:
        """Weight decay applies to weights, not biases."""
        return self.weight_decay > 0 and not key.endswith("bias")

    def step(self, grads: Params) -> None:
        unknown = sorted(set(grads) - set(self.params))
        if unknown:
            raise KeyError(f"gradients for unknown parameters: {unknown}")
        self.steps += 1
        for key, grad in grads.items():
            self._update(key, self.params[key], grad)

    def _update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """SGD with (optionally Nesterov) momentum and L2 weight decay added to the gradient."""

    def __init__(
        self,
        params: Params,
        lr: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = {k: np.zeros_like(v) for k, v in params.items()}

    def _update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        if self._decays(key):
            grad = grad + self.weight_decay * param
        velocity = self.velocity[key]
        velocity *= self.momentum
        velocity += grad
        direction = grad + self.momentum * velocity if self.nesterov else velocity
        param -= self.lr * direction


class Adam(Optimizer):
    """Adam; with weight_decay it is AdamW (decay decoupled from the gradient moments)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.scratch = {k: np.empty_like(v) for k, v in params.items()}

    def _update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        # Every pass in place, into one scratch array a parameter: the same arithmetic as
        # m_hat / (sqrt(v_hat) + eps) without a temporary per operation (docs/speed.md).
        m, v, scratch = self.m[key], self.v[key], self.scratch[key]
        if self._decays(key):
            np.multiply(param, self.lr * self.weight_decay, out=scratch)
            param -= scratch
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=scratch)
        m += scratch
        v *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta2
        v += scratch
        np.divide(v, 1 - self.beta2**self.steps, out=scratch)  # v_hat
        np.sqrt(scratch, out=scratch)
        scratch += self.eps
        np.divide(m, scratch, out=scratch)  # m / (sqrt(v_hat) + eps)
        scratch *= self.lr / (1 - self.beta1**self.steps)  # m_hat = m / (1 - beta1**t)
        param -= scratch


def cosine_lr(
    base_lr: float, step: int, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0
) -> float:
    """Linear warm-up, then cosine decay from base_lr to min_lr over the remaining steps."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))


def step_lr(base_lr: float, step: int, step_size: int, gamma: float = 0.1) -> float:
    """Multiply the rate by gamma every step_size steps."""
    return base_lr * gamma ** (step // step_size)
