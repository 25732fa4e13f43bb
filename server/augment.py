"""NumPy data augmentation for 28x28 digits: pose (shift, rotation, scale) and stroke thickness.

People draw digits with thick and thin brushes, slanted and small; MNIST alone shows few of them.
Everything here is vectorized over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms; zeros everywhere give the identity."""

    max_shift: float = 2.0  # pixels, each axis
    max_rotation: float = 12.0  # degrees
    scale_range: tuple[float, float] = (0.85, 1.12)
    max_shear: float = 0.15
    thicken_prob: float = 0.3
    thin_prob: float = 0.15


def random_affine(
    n: int, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image inverse maps, output -> input coords: (N, 2, 2) matrices, (N, 2) shifts."""
    angle = np.deg2rad(rng.uniform(-config.max_rotation, config.max_rotation, n))
    scale = rng.uniform(*config.scale_range, n)
    shear = rng.uniform(-config.max_shear, config.max_shear, n)
    shift = rng.uniform(-config.max_shift, config.max_shift, (n, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map = rotation @ shear @ scale; we need its inverse for sampling
    forward = np.empty((n, 2, 2))
    forward[:, 0, 0] = cos * scale
    forward[:, 0, 1] = (cos * shear - sin) * scale
    forward[:, 1, 0] = sin * scale
    forward[:, 1, 1] = (sin * shear + cos) * scale
    return np.linalg.inv(forward), shift


def warp(images: np.ndarray, inverse: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Bilinear resampling of (N, H, W) images about their centre; zeros outside."""
    n, h, w = images.shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.stack([ys, xs], axis=-1) - centre  # (H, W, 2) as (y, x)
    moved = grid[None] - shift[:, None, None, :]  # (N, H, W, 2)
    source = np.einsum("nij,nhwj->nhwi", inverse, moved) + centre  # (N, H, W, 2)
    top_left = np.floor(source).astype(np.int64)
    frac = (source - top_left).astype(np.float32)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # (N, H+2, W+2): a zero frame
    batch = np.arange(n)[:, None, None]
    out = np.zeros_like(images)
    for dy in (0, 1):
        for dx in (0, 1):
            rows = np.clip(top_left[..., 0] + dy + 1, 0, h + 1)
            cols = np.clip(top_left[..., 1] + dx + 1, 0, w + 1)
            weight = (frac[..., 0] if dy else 1 - frac[..., 0]) * (
                frac[..., 1] if dx else 1 - frac[..., 1]
            )
            out += weight * padded[batch, rows, cols]
    return out


def neighbourhood(images: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """Max (dilation) or min (erosion) over each pixel's 3x3 cross, for (N, H, W) images."""
    _, h, w = images.shape
    fill = 0.0 if reduce is np.maximum else 1.0
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), constant_values=fill)
    result = images.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        reduce(result, padded[:, dy : dy + h, dx : dx + w], out=result)
    return result


def vary_thickness(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray:
    """Thicken some strokes (dilation) and thin others (a half-strength erosion)."""
    draw = rng.random(len(images))
    thicken = draw < config.thicken_prob
    thin = (draw >= config.thicken_prob) & (draw < config.thicken_prob + config.thin_prob)
    out = images.copy()
    if thicken.any():
        out[thicken] = neighbourhood(images[thicken], np.maximum)
    if thin.any():
        eroded = neighbourhood(images[thin], np.minimum)
        out[thin] = 0.5 * (images[thin] + eroded)
    return out


def augment(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """A random pose and stroke thickness for every image of (N, 28, 28) float32 in [0, 1]."""
    inverse, shift = random_affine(len(images), rng, config)
    warped = warp(images, inverse, shift)
    return np.clip(vary_thickness(warped, rng, config), 0.0, 1.0).astype(np.float32)
