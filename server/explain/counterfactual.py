"""Counterfactuals: the pen strokes, added or erased, that make the model read another digit.

Plain gradient descent on the input finds a faint haze that only this model reads as the
target (such edits rarely carry over to an independently trained CNN: docs/api-contract.md,
"POST /api/v1/counterfactual"). Edits made the way a
person edits a digit carry over: each step adds one short stroke of full ink touching the
existing ink, or erases one from it. The model's gradient, averaged over the image and its
one-pixel shifts (so no edit works only at one alignment), ranks every stroke at every place;
the best few are checked with an exact forward pass. A linear pull towards the target class's
mean MNIST image makes ink cheap where that digit usually has ink and dear where it has none.
The search stops once every shifted view reads the target with high probability.
scripts/counterfactual_eval.py measures how often independent CNNs agree with the edits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.cnn import Sequential, log_softmax, softmax

SIDE = 28
STROKE_SIDE = 7  # a stroke is drawn in a 7x7 window around its centre pixel
STROKE_ANGLES = (0, 30, 60, 90, 120, 150)  # degrees; a round dot is added to these
NUM_CLASSES = 10
MAX_HALVINGS = 5  # the pull towards the class mean weakens at most to 1/32 of its weight


class TargetIsCurrentLabelError(ValueError):
    """The model already reads the image as the target: there is nothing to change."""


@dataclass(frozen=True)
class CounterfactualOptions:
    """How hard to search; the defaults are the ones measured in scripts/counterfactual_eval.py."""

    max_steps: int = 60  # strokes added or erased, at most
    confidence: float = 0.99  # stop once every shifted view reads the target this surely
    prior_weight: float = 2.0  # pull towards the target class's mean image
    ink_floor: float = 0.2  # adding ink costs where the class mean is below this, pays above
    stroke_length: float = 6.0  # pixels, end to end before the pen's softness
    stroke_width: float = 0.9  # Gaussian sigma of the pen across the stroke, pixels
    view_shift: int = 1  # views: the image and its four shifts by this many pixels
    candidates: int = 8  # best strokes by the gradient, checked with an exact forward pass
    patience: int = 8  # stop after this many strokes that did not lower the loss
    time_limit: float | None = None  # seconds of search, then the best edit so far

    def __post_init__(self) -> None:
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")


@dataclass(frozen=True)
class Counterfactual:
    """The edited input and how the model reads it, beside how it read the original."""

    target: int
    reached: bool  # the model reads the edited input as `target` with probability > 0.5
    steps: int  # strokes applied
    pixels: np.ndarray  # (28, 28) edited input in [0, 1]
    delta: np.ndarray  # (28, 28) pixels - original, signed
    label: int
    probabilities: np.ndarray  # (10,) of the edited input
    original_label: int
    original_probabilities: np.ndarray  # (10,)

    @property
    def l1(self) -> float:
        return float(np.abs(self.delta).sum())

    @property
    def l2(self) -> float:
        return float(np.sqrt((self.delta.astype(np.float64) ** 2).sum()))


# --- class means: the pixel prior --------------------------------------------------------------


def class_means(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 or [0, 1] images and (N,) labels -> (10, 28, 28) float32 mean images."""
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    means = np.zeros((NUM_CLASSES, SIDE, SIDE), dtype=np.float64)
    for digit in range(NUM_CLASSES):
        chosen = images[labels == digit]
        if not len(chosen):
            raise ValueError(f"no image of class {digit}; class means need every digit")
        means[digit] = chosen.mean(axis=0, dtype=np.float64) / scale
    return means.astype(np.float32)


def save_class_means(path: Path, means: np.ndarray, source: str) -> None:
    """One small .npz: `means` (10, 28, 28) float32 and a line saying where they came from."""
    np.savez_compressed(path, means=means.astype(np.float32), source=np.array(source))


def load_class_means(path: Path) -> np.ndarray:
    """(10, 28, 28) float32 in [0, 1]; ValueError naming the file when it is not that."""
    if not Path(path).is_file():
        raise ValueError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as archive:
            means = archive["means"]
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a class-means file ({error})") from error
    if means.shape != (NUM_CLASSES, SIDE, SIDE) or not np.all((means >= 0) & (means <= 1)):
        raise ValueError(f"{path}: expected means (10, 28, 28) in [0, 1], got {means.shape}")
    return means.astype(np.float32)


# --- strokes -----------------------------------------------------------------------------------


def pen_strokes(length: float, width: float) -> np.ndarray:
    """(S, 7, 7) soft strokes of full ink at their core: one per angle, then a round dot."""
    centre = STROKE_SIDE // 2
    yy, xx = np.mgrid[0:STROKE_SIDE, 0:STROKE_SIDE] - centre  # (7, 7) each
    strokes = []
    for angle in np.deg2rad(STROKE_ANGLES):
        along = yy * np.sin(angle) + xx * np.cos(angle)
        across = -yy * np.cos(angle) + xx * np.sin(angle)
        beyond_ends = np.maximum(np.abs(along) - length / 2, 0.0)
        strokes.append(np.exp(-0.5 * (beyond_ends**2 + across**2) / width**2))
    strokes.append(np.exp(-0.5 * (yy**2 + xx**2) / (1.3 * width) ** 2))
    # a little over 1 before clipping, so the core is solid ink and the edge stays soft
    return np.clip(np.stack(strokes) * 1.1, 0.0, 1.0).astype(np.float32)


def windows(image: np.ndarray) -> np.ndarray:
    """(28, 28) -> (784, 49): the 7x7 window centred on each pixel, zero outside the image."""
    half = STROKE_SIDE // 2
    padded = np.pad(image, half)  # (34, 34)
    view = np.lib.stride_tricks.sliding_window_view(padded, (STROKE_SIDE, STROKE_SIDE))
    return view.reshape(SIDE * SIDE, STROKE_SIDE * STROKE_SIDE)  # (28*28, 7*7), a copy


def paste(window: np.ndarray, centre: int) -> np.ndarray:
    """A (7, 7) window centred on flat pixel index `centre` -> (28, 28), cropped at the edges."""
    half = STROKE_SIDE // 2
    y, x = divmod(centre, SIDE)
    canvas = np.zeros((SIDE + 2 * half, SIDE + 2 * half), dtype=np.float32)
    canvas[y : y + STROKE_SIDE, x : x + STROKE_SIDE] = window
    return canvas[half : half + SIDE, half : half + SIDE]


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, 28, 28) moved down by dy and right by dx (negative: up, left), zero filled."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def view_shifts(step: int) -> list[tuple[int, int]]:
    """The image itself, then its four shifts by `step` pixels."""
    if step == 0:
        return [(0, 0)]
    return [(0, 0), (step, 0), (-step, 0), (0, step), (0, -step)]


# --- the objective -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """Loss = mean cross-entropy towards `target` over the shifted views + a linear pixel prior.

    The prior term is prior_weight * sum(x * (ink_floor - mean_target)): ink costs where the
    target digit rarely has any and pays where it usually does.
    """

    model: Sequential
    target: int
    shifts: list[tuple[int, int]]
    prior: np.ndarray  # (28, 28): d(prior term)/dx, constant

    def _views(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) -> (V*N, 28, 28, 1), view-major."""
        return np.concatenate([shifted(images, dy, dx) for dy, dx in self.shifts])[..., None]

    def losses(self, images: np.ndarray) -> np.ndarray:
        """(N,) loss of each candidate image (N, 28, 28)."""
        n = len(images)
        logits = self.model.forward(self._views(images))  # (V*N, 10)
        cross_entropy = -log_softmax(logits)[:, self.target].reshape(len(self.shifts), n)
        return cross_entropy.mean(axis=0) + (images * self.prior).sum(axis=(1, 2))

    def gradient(self, image: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(loss, the lowest target probability over the views, d loss / d image (28, 28))."""
        views = self._views(image[None])  # (V, 28, 28, 1)
        logits, caches = self.model.forward_train(views, training=False)  # no pool masks
        probabilities = softmax(logits)  # (V, 10)
        grad_logits = probabilities.copy()
        grad_logits[:, self.target] -= 1.0
        grad_logits /= len(self.shifts)  # d mean-CE / d logits
        grad_views, _ = self.model.backward(grad_logits.astype(np.float32), caches)
        grad = self.prior.copy()
        for (dy, dx), grad_view in zip(self.shifts, grad_views[..., 0], strict=True):
            grad += shifted(grad_view[None], -dy, -dx)[0]  # the adjoint of the shift
        cross_entropy = -np.log(np.maximum(probabilities[:, self.target], 1e-30)).mean()
        loss = float(cross_entropy + (image * self.prior).sum())
        return loss, float(probabilities[:, self.target].min()), grad


# --- the search --------------------------------------------------------------------------------


def stroke_scores(image: np.ndarray, grad: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """First-order change of the loss for every edit: (2, 784, S), [0] add, [1] erase.

    Adding stroke k at pixel p makes max(x, k) of the window (ink saturates); erasing makes
    x * (1 - k). Each score is <grad, change>. An added stroke must touch ink already there
    (unless the image has none), so edits grow from the digit instead of floating beside it.
    """
    x_win, g_win = windows(image), windows(grad)  # (784, 49) each
    kernels = strokes.reshape(len(strokes), -1)  # (S, 49)
    added = np.maximum(kernels[None] - x_win[:, None], 0.0)  # (784, S, 49)
    add = (added * g_win[:, None]).sum(axis=-1)  # (784, S)
    touches = (x_win[:, None] * (kernels[None] > 0.5)).max(axis=-1) > 0.4  # (784, S)
    if touches.any():
        add = np.where(touches, add, np.inf)
    erase = -(x_win * g_win) @ kernels.T  # (784, S)
    return np.stack([add, erase])


def apply_edit(image: np.ndarray, strokes: np.ndarray, edit: int) -> np.ndarray:
    """The image after edit number `edit`, an index into stroke_scores(...).ravel()."""
    erase, rest = divmod(edit, SIDE * SIDE * len(strokes))
    centre, which = divmod(rest, len(strokes))
    stroke = strokes[which]
    window = windows(image)[centre].reshape(STROKE_SIDE, STROKE_SIDE)
    change = -window * stroke if erase else np.maximum(stroke - window, 0.0)
    return np.clip(image + paste(change, centre), 0.0, 1.0)


def best_stroke(
    objective: Objective, image: np.ndarray, grad: np.ndarray, strokes: np.ndarray, count: int
) -> tuple[np.ndarray, float] | None:
    """Of the `count` edits the gradient ranks best, the one with the lowest exact loss, and
    that loss; None when the gradient promises no edit helps."""
    scores = stroke_scores(image, grad, strokes).ravel()
    best = np.argsort(scores, kind="stable")[:count]
    best = best[scores[best] < 0]
    if not len(best):
        return None
    candidates = np.stack([apply_edit(image, strokes, int(edit)) for edit in best])  # (K, 28, 28)
    losses = objective.losses(candidates)  # (K,)
    chosen = int(losses.argmin())
    return candidates[chosen], float(losses[chosen])


def counterfactual(
    model: Sequential,
    image: np.ndarray,
    target: int,
    means: np.ndarray,
    options: CounterfactualOptions | None = None,
) -> Counterfactual:
    """Edit a (28, 28) image in [0, 1] with pen strokes until `model` reads `target`.

    `means` are the (10, 28, 28) class mean images (load_class_means). Raises
    TargetIsCurrentLabelError when the model already reads `target`, ValueError for a bad target.
    """
    options = options or CounterfactualOptions()
    if not 0 <= target < NUM_CLASSES:
        raise ValueError(f"target must be a digit 0-9, got {target}")
    original = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)  # (28, 28)
    original_probabilities = softmax(model.forward(original[None, ..., None]))[0]
    original_label = int(original_probabilities.argmax())
    if original_label == target:
        raise TargetIsCurrentLabelError(
            f"target {target} is already the model's reading of this image; ask for another digit"
        )
    shifts = view_shifts(options.view_shift)
    pull = (options.ink_floor - means[target]).astype(np.float32)  # (28, 28)
    weight = options.prior_weight
    objective = Objective(model, target, shifts, weight * pull)
    strokes = pen_strokes(options.stroke_length, options.stroke_width)
    deadline = math.inf if options.time_limit is None else time.perf_counter() + options.time_limit
    edited, steps, uphill, halvings = original, 0, 0, 0
    while steps < options.max_steps and uphill < options.patience:
        if time.perf_counter() >= deadline:
            break
        loss, lowest, grad = objective.gradient(edited)
        if lowest >= options.confidence:
            break
        found = best_stroke(objective, edited, grad, strokes, options.candidates)
        if found is None:
            break
        candidate, candidate_loss = found
        if candidate_loss >= loss and halvings < MAX_HALVINGS and weight > 0:
            # no stroke helps under this pull: the pull is a preference, so weaken it; once
            # it is weak, take the best stroke anyway (a step over a ridge, not a stop)
            weight, halvings = weight / 2, halvings + 1
            objective = Objective(model, target, shifts, weight * pull)
            continue
        uphill += int(candidate_loss >= loss)
        edited, steps = candidate, steps + 1
    probabilities = softmax(model.forward(edited[None, ..., None]))[0]
    return Counterfactual(
        target=target,
        reached=bool(probabilities[target] > 0.5),
        steps=steps,
        pixels=edited,
        delta=edited - original,
        label=int(probabilities.argmax()),
        probabilities=probabilities,
        original_label=original_label,
        original_probabilities=original_probabilities,
    )
