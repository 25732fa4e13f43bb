"""The preprocessing one step at a time, each image small enough to draw beside "What it sees"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from server import preprocess

STEP_SIDE = 64  # the largest side a step's picture keeps; the page draws them as thumbnails


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline: its name, a sentence for a learner, its picture in [0, 1]."""

    name: str
    note: str
    image: np.ndarray  # (h, w) float32, h and w <= STEP_SIDE


def thumbnail(image: np.ndarray, side: int = STEP_SIDE) -> np.ndarray:
    """Shrink (never grow) so the longer side is at most `side`, averaging each pixel's area."""
    h, w = image.shape
    scale = side / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(image, dtype=np.float32)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    source = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))  # mode "F"
    return np.asarray(source.resize(size, Image.Resampling.BOX), dtype=np.float32)  # (h', w')


def preprocessing_steps(gray: np.ndarray) -> list[Step]:
    """Decoded (H, W) gray in [0, 1] -> the six stages that turn it into MNIST's 28x28.

    The pipeline's own stages (preprocess.stages), so the last picture is the network's input;
    NoDigitFound as the pipeline raises it.
    """
    stage = preprocess.stages(gray)
    h, w = gray.shape
    bh, bw = stage.cropped.shape
    return [
        Step("decoded", f"Your image in shades of gray, {w}x{h} pixels.", thumbnail(gray)),
        Step(
            "ink",
            "Ink made bright on black, as in MNIST (dark pen on paper is flipped).",
            thumbnail(stage.ink),
        ),
        Step(
            "cleaned",
            "Faint background, specks and shadows dropped; the strongest ink set to 1.",
            thumbnail(stage.cleaned),
        ),
        Step(
            "cropped", f"Cut to the box around the ink, {bw}x{bh} pixels.", thumbnail(stage.cropped)
        ),
        Step(
            "scaled",
            f"Shrunk so the longer side is 20 pixels ({stage.box.shape[1]}x{stage.box.shape[0]}).",
            stage.box,
        ),
        Step(
            "centred",
            "Placed in a 28x28 field with its centre of mass in the middle: what the network sees.",
            stage.digit,
        ),
    ]


def pixels_step(pixels: np.ndarray) -> list[Step]:
    """Pixels sent as they are skip preprocessing: one step says so."""
    return [Step("pixels", "28x28 pixels sent as they are: no preprocessing.", pixels)]
