"""A request's input as the model reads it: base64 or uploaded bytes -> decoded gray -> the
28x28 MNIST-like digit, timed per stage; the predict and counterfactual routes share it."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence

import numpy as np
import pybase64
from pydantic import ValidationError

from server import preprocess
from server.api.errors import InputError, describe_validation
from server.api.schemas.arrays import Pixels
from server.api.schemas.predict import (
    EditsIn,
)
from server.api.schemas.trainings import TeachExample
from server.config import Settings
from server.explain.edits import Edits


def decode_base64_image(text: str, field: str = "image") -> bytes:
    """Accept plain base64 or a data URL (data:image/png;base64,...)."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise InputError(
                422, f"{field}: a data URL must be base64-encoded (data:image/png;base64,...)"
            )
    data = "".join(text.split())
    try:
        return strict_b64decode(data)
    except (binascii.Error, ValueError):
        raise InputError(422, f"{field}: not valid base64") from None


def strict_b64decode(data: str) -> bytes:
    """base64.b64decode(data, validate=True), the same bytes or error, mostly through pybase64:
    1 us where the standard library's strict mode takes 18 on the pad's 8 KB drawing.

    pybase64 refuses a few inputs the standard library takes (padding after a whole group,
    "AAAA="), and never takes one it refuses (tests/api/test_inputs.py), so the standard
    library has the last word only on what pybase64 refuses."""
    try:
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(data, validate=True)


class Clock:
    """Milliseconds per stage of one request."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round((now - self.last) * 1000, 3)
        self.last = now

    def report(self) -> dict[str, float]:
        return {**self.stages, "total": round((time.perf_counter() - self.start) * 1000, 3)}


def image_from_bytes(data: bytes, settings: Settings, clock: Clock | None = None) -> np.ndarray:
    """Upload bytes -> (28, 28) float32 as MNIST draws digits; laps `clock` if given."""
    return digit_from_gray(gray_from_bytes(data, settings, clock), clock)


def image_or_pixels(
    image: str | None, pixels: Pixels | None, settings: Settings, clock: Clock
) -> tuple[np.ndarray, np.ndarray | None]:
    """A request's input: (28, 28) float32 and, for an `image`, its decoded gray (None for
    `pixels`, used as they are). The schemas guarantee exactly one of the two."""
    if image is not None:
        gray = gray_from_bytes(decode_base64_image(image), settings, clock)
        return digit_from_gray(gray, clock), gray
    clock.lap("decode")
    clock.lap("preprocess")
    return np.asarray(pixels, dtype=np.float32), None  # (28, 28)


def gray_from_bytes(data: bytes, settings: Settings, clock: Clock | None = None) -> np.ndarray:
    """Upload bytes -> (H, W) gray: uint8 levels, or float if it must; laps "decode"."""
    gray = preprocess.decode(data, settings.max_image_side)
    if clock:
        clock.lap("decode")
    return gray


def digit_from_gray(gray: np.ndarray, clock: Clock | None = None) -> np.ndarray:
    """Decoded gray -> (28, 28) float32 as MNIST draws digits; laps "preprocess"."""
    digit = preprocess.digit_from_gray(gray)
    if clock:
        clock.lap("preprocess")
    return digit


def edits_from_form(text: str) -> Edits:
    """The `edits` form field: the same JSON object /predict takes, checked by the same schema."""
    try:
        data = json.loads(text)  # as FastAPI reads a JSON body: NaN and Infinity get through
    except ValueError as error:
        raise InputError(422, f"edits: not valid JSON ({error})") from None
    try:
        return EditsIn.model_validate(data).to_edits()
    except ValidationError as error:
        errors = [{**e, "loc": ("edits", *e["loc"])} for e in error.errors()]
        raise InputError(422, describe_validation(errors)) from None


def teach_examples(
    examples: Sequence[TeachExample], settings: Settings
) -> tuple[np.ndarray, tuple[int, ...]]:
    """A "teach it" job's drawings as the model reads them: (E, 28, 28) float32 and the labels;
    InputError 422 naming the index of one that is not an image or holds no digit."""
    images = []
    for index, example in enumerate(examples):
        if example.image is None:
            images.append(np.asarray(example.pixels, dtype=np.float32))  # (28, 28)
            continue
        where = f"examples[{index}]"
        try:
            images.append(digit_from_base64(example.image, settings, f"{where}.image", where))
        except preprocess.PreprocessError as error:
            raise InputError(422, str(error)) from None
    return np.stack(images), tuple(example.label for example in examples)


def digit_from_base64(text: str, settings: Settings, field: str, where: str) -> np.ndarray:
    """One base64 image of a list -> (28, 28) float32; a bad one's error names `where` (its type,
    and so its status, kept), bad base64 names `field`."""
    data = decode_base64_image(text, field=field)
    try:
        return image_from_bytes(data, settings)
    except preprocess.PreprocessError as error:
        raise type(error)(f"{where}: {error}") from error
