"""Uploaded image of a handwritten digit -> the 28x28 array an MNIST-trained network expects.

The only package that knows MNIST's conventions. pipeline.py runs it: decoding.py (bytes -> gray,
with png.py for canvas exports), ink.py (polarity, noise, specks: the ink's box), digit.py
(MNIST's geometry); errors.py names every way an upload can fail.
"""

from server.preprocess.decoding import (
    MAX_PIXELS,
    MAX_SIDE,
    as_unit,
    decode,
    decode_image,
    image_to_gray,
)
from server.preprocess.digit import DIGIT_SIDE, MNIST_SIDE, center_by_mass, crop_to_ink, fit_box
from server.preprocess.errors import (
    NO_DIGIT,
    ImageTooLarge,
    NoDigitFound,
    NotAnImage,
    PreprocessError,
    UnsupportedImageType,
)
from server.preprocess.ink import (
    BORDER_FRACTION,
    INVERTED,
    MAD_TO_SIGMA,
    MIN_CONTRAST,
    NOISE_SIGMAS,
    POLARITY_MARGIN,
    RELATIVE_FLOOR,
    UNIT,
)
from server.preprocess.pipeline import Stages, digit_from_gray, stages, to_mnist

__all__ = [
    "BORDER_FRACTION",
    "DIGIT_SIDE",
    "INVERTED",
    "MAD_TO_SIGMA",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_CONTRAST",
    "MNIST_SIDE",
    "NOISE_SIGMAS",
    "NO_DIGIT",
    "POLARITY_MARGIN",
    "RELATIVE_FLOOR",
    "UNIT",
    "ImageTooLarge",
    "NoDigitFound",
    "NotAnImage",
    "PreprocessError",
    "Stages",
    "UnsupportedImageType",
    "as_unit",
    "center_by_mass",
    "crop_to_ink",
    "decode",
    "decode_image",
    "digit_from_gray",
    "fit_box",
    "image_to_gray",
    "stages",
    "to_mnist",
]
