"""Occlusion saliency: how much the target's probability drops when part of the input is hidden.

Slower than a gradient but asks the network directly, with no linear approximation.
"""

from __future__ import annotations

import numpy as np

from server.cnn import Sequential, softmax

PATCH = 4  # px, square: about one pen stroke of a 28x28 MNIST digit
STRIDE = 2  # px between patches: 13 x 13 = 169 patches on 28x28, each pixel under 1 to 4
FILL = 0.0  # what covers the patch: MNIST's background (white ink on black)


def patch_starts(side: int, patch: int, stride: int) -> list[int]:
    """Top (or left) edges of patches `stride` apart whose union covers 0 .. side-1."""
    starts = list(range(0, side - patch + 1, stride))
    if starts[-1] != side - patch:
        starts.append(side - patch)  # one more, flush with the far edge
    return starts


def occlusion_map(
    model: Sequential,
    image: np.ndarray,
    target: int,
    *,
    patch: int = PATCH,
    stride: int = STRIDE,
    fill: float = FILL,
) -> np.ndarray:
    """(H, W): per pixel, the mean over the patches covering it of p(target | image) minus
    p(target | image with that patch set to `fill`). Positive where hiding it hurts the target.

    One forward pass of 1 + patches images: the image itself, then one per patch position.
    """
    h, w = image.shape
    if not 1 <= patch <= min(h, w) or stride < 1:
        raise ValueError(f"patch must be 1 to {min(h, w)} and stride >= 1, got {patch}, {stride}")
    windows = [
        (y, x) for y in patch_starts(h, patch, stride) for x in patch_starts(w, patch, stride)
    ]
    batch = np.repeat(image[None].astype(np.float32), 1 + len(windows), axis=0)  # (1+P, H, W)
    for k, (y, x) in enumerate(windows, start=1):
        batch[k, y : y + patch, x : x + patch] = fill
    probability = softmax(model.forward(batch[..., None]))[:, target]  # (1+P,)
    drops = probability[0] - probability[1:]  # (P,)
    total = np.zeros((h, w), dtype=np.float64)
    covered = np.zeros((h, w), dtype=np.float64)
    for drop, (y, x) in zip(drops, windows, strict=True):
        total[y : y + patch, x : x + patch] += drop
        covered[y : y + patch, x : x + patch] += 1
    return (total / covered).astype(np.float32)
