"""Inputs optimised to excite a unit (Lucid's feature visualisation, scaled to 28x28 digits):
gradient ascent with jitter and blur so the motif is one the unit sees wherever it falls, not a
pattern of single pixels; then a polish of sign steps without jitter from the better of the
start and where the ascent led, keeping the best image seen: never worse than the start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from server.atlas.geometry import ConvGroup
from server.cnn import Sequential, log_softmax, softmax

# images (N, 28, 28) in [0, 1] -> each image's own objective (N,) and its gradient (N, 28, 28)
Objective = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class AscentConfig:
    steps: int = 128  # jittered, blurred, normalised gradient steps
    step: float = 0.05  # mean change of a pixel a step
    blur_every: int = 4
    jitter: int = 1  # pixels the image moves at most a step, each way
    polish: int = 32  # unjittered sign steps at the end, from polish_step down to polish_last:
    polish_step: float = 0.1  # together they can cross the whole range [0, 1], as a unit that
    polish_last: float = 0.005  # is linear in its pixels needs to reach its corner optimum
    seed: int = 0


def blur(images: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur of (N, H, W), edges repeated."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")  # (N, H+2, W+2)
    rows = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4  # (N, H, W+2)
    return (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4  # (N, H, W)


def ascend(
    objective: Objective, start: np.ndarray, config: AscentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The best images (N, 28, 28) found from `start`, and their objective values (N,)."""
    rng = np.random.default_rng(config.seed)
    start = np.clip(start, 0.0, 1.0).astype(np.float32)
    x = start
    for step in range(config.steps):
        dy, dx = (int(v) for v in rng.integers(-config.jitter, config.jitter + 1, size=2))
        _, grad = objective(np.roll(x, (dy, dx), axis=(1, 2)))
        grad = np.roll(grad, (-dy, -dx), axis=(1, 2))
        scale = np.abs(grad).mean(axis=(1, 2), keepdims=True) + 1e-12  # (N, 1, 1)
        x = np.clip(x + config.step * grad / scale, 0.0, 1.0)
        if (step + 1) % config.blur_every == 0:
            x = blur(x)
    # polish whichever is better, the start or where the jittered ascent led from it
    start_values, values = objective(start)[0], objective(x)[0]
    kept = start_values > values
    x = np.where(kept[:, None, None], start, x)
    best, best_values = x.copy(), np.where(kept, start_values, values)
    sizes = np.geomspace(config.polish_step, config.polish_last, config.polish)
    for step in range(config.polish + 1):
        values, grad = objective(x)
        if step:  # the first pass only gives the gradient at `best`
            better = values > best_values
            best[better], best_values = x[better], np.where(better, values, best_values)
        if step < config.polish:
            x = np.clip(x + sizes[step] * np.sign(grad), 0.0, 1.0)
    return best, best_values


def unit_objective(model: Sequential, group: ConvGroup) -> Objective:
    """Image n's objective: channel n of `group.map` at the map's centre (a batch of one image
    per channel, each excites its own unit)."""
    layers = model.layers[: group.map_index + 1]
    row, col = group.centre

    def objective(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = images[..., None].astype(np.float32)  # (N, 28, 28, 1)
        caches = []
        for layer in layers:
            x, cache = layer.forward(x)
            caches.append(cache)
        n = np.arange(len(images))
        grad = np.zeros_like(x)  # (N, H, W, C)
        grad[n, row, col, n] = 1.0
        for layer, cache in zip(reversed(layers), reversed(caches), strict=True):
            grad, _ = layer.backward(grad, cache)
        return x[n, row, col, n], grad[..., 0]

    return objective


def class_objective(model: Sequential) -> Objective:
    """Image n's objective: the log-probability of class n."""

    def objective(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, caches = model.forward_train(images[..., None].astype(np.float32), training=False)
        n = np.arange(len(images))
        target = np.zeros_like(logits)  # (N, 10)
        target[n, n] = 1.0
        grad, _ = model.backward(target - softmax(logits), caches)
        return log_softmax(logits)[n, n], grad[..., 0]

    return objective


def class_inputs(
    model: Sequential, config: AscentConfig, means: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each class, an image (10, 28, 28) the model reads as it, and that probability (10,).

    Two starts, faint noise and the class's mean digit (`means`, (10, 28, 28) in [0, 1]), the
    better kept: a network trained with outlier exposure reads noise with every hidden unit
    off, where no gradient leads anywhere.
    """
    classes = model.output_shapes[-1][0]
    noise = np.random.default_rng(config.seed).uniform(0.0, 0.2, (classes, 28, 28))
    objective = class_objective(model)
    from_noise, noise_log_p = ascend(objective, noise, config)
    from_mean, mean_log_p = ascend(objective, means, config)
    better = mean_log_p > noise_log_p  # (10,)
    images = np.where(better[:, None, None], from_mean, from_noise)
    log_p = np.where(better, mean_log_p, noise_log_p)
    return images.astype(np.float32), np.exp(log_p).astype(np.float32)
