"""The pipeline: uploaded bytes -> decoded gray -> the ink's box -> MNIST's 28x28 digit.

MNIST's conventions are white ink (1.0) on black (0.0), the digit's longer side scaled to 20 px
with anti-aliasing, its centre of mass moved to the centre of a 28x28 field by an integer shift.
Every failure is a typed `PreprocessError` (a `ValueError`) whose message is meant for the person
who sent the image; nothing here knows HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.preprocess.decoding import MAX_PIXELS, decode
from server.preprocess.digit import center_by_mass, crop_to_ink, fit_box
from server.preprocess.ink import as_gray, clean, ink_box, ink_map, ink_rule


def to_mnist(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Run the whole pipeline: uploaded bytes -> (28, 28) float32, white ink on black."""
    return digit_from_gray(decode(data, max_pixels=max_pixels))


def digit_from_gray(gray: np.ndarray) -> np.ndarray:
    """Decoded (H, W) gray -> (28, 28) MNIST-style digit; apart so callers can time decoding.

    gray: uint8 levels or float in [0, 1]. Only the box holding the ink is ever made float.
    """
    gray = as_gray(gray)
    return center_by_mass(fit_box(ink_box(gray, ink_rule(gray))))


@dataclass(frozen=True)
class Stages:
    """Each stage's image, to show a learner what the pipeline did to their upload."""

    ink: np.ndarray  # (H, W) float32: ink high whatever the polarity
    cleaned: np.ndarray  # (H, W) float32: background, noise and specks dropped, the peak at 1
    cropped: np.ndarray  # (h, w): the ink's bounding box
    box: np.ndarray  # (h', w'): the longer side 20 px
    digit: np.ndarray  # (28, 28): what the network sees, as digit_from_gray gives it


def stages(gray: np.ndarray) -> Stages:
    """digit_from_gray's steps with the whole frame kept, for pictures: the same rule, so the
    same digit, bit for bit. NoDigitFound as digit_from_gray raises it."""
    gray = as_gray(gray)
    rule = ink_rule(gray)
    ink = ink_map(gray, rule.invert)  # (H, W) float32
    cleaned = clean(ink, rule.cut)  # (H, W), a new array
    cropped = crop_to_ink(cleaned)  # (H, W) -> (h, w)
    box = fit_box(cropped)  # (h, w) -> (h', w'), the longer side 20
    return Stages(ink, cleaned, cropped, box, center_by_mass(box))
