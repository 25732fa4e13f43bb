"""Teaching a trained model a learner's own handwriting from a few labelled drawings.

A handful of drawings teach nothing on their own and a high rate makes the model forget MNIST,
so each step mixes the learner's examples, augmented as training augments MNIST (pose, elastic
wobble, stroke thickness), with as many replayed MNIST training images, at a low rate. What
was measured and chosen: docs/training.md, "Teach it your handwriting" (scripts/teach_eval.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from server.cnn import Adam, Conv2D, Sequential, softmax_cross_entropy
from server.cnn.optim import SGD, Optimizer
from server.training.augment import AugmentConfig, augment
from server.training.train import StepResult

# the learner's drawings get training's pose and stroke changes and its strongest elastic wobble
EXAMPLE_AUGMENT = AugmentConfig(elastic_alpha=34.0)


@dataclass(frozen=True)
class FinetuneConfig:
    """The recipe: every default is the measured choice (docs/training.md)."""

    steps: int = 150
    learning_rate: float = 1e-3
    examples_per_batch: int = 16  # the learner's drawings, drawn with replacement and augmented
    replay_per_batch: int = 16  # MNIST training images beside them, so MNIST is not forgotten
    augment: bool = True
    optimizer: Literal["adam", "sgd"] = "adam"
    keep_base: float = 0.5  # the end weights: this much of the base's, the rest the tuned ones
    seed: int = 0


class Finetune:
    """A model, its optimizer and the two sources each batch is drawn from."""

    def __init__(
        self,
        model: Sequential,
        examples: np.ndarray,
        labels: np.ndarray,
        replay_images: np.ndarray,
        replay_labels: np.ndarray,
        config: FinetuneConfig,
    ) -> None:
        """`examples` (E, 28, 28) float32 in [0, 1] as preprocessing gives them; `replay_images`
        (R, 28, 28) uint8 as MNIST stores them."""
        assert len(examples) == len(labels) > 0, "at least one labelled example"
        self.model, self.config = model, config
        self.examples, self.labels = examples.astype(np.float32), labels.astype(np.int64)
        self.replay_images, self.replay_labels = replay_images, replay_labels.astype(np.int64)
        params = model.parameters()
        self.optimizer: Optimizer = (
            Adam(params, lr=config.learning_rate)
            if config.optimizer == "adam"
            else SGD(params, lr=config.learning_rate, momentum=0.9)
        )

    def batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(B, 28, 28) float32 and (B,) labels: augmented examples, then replayed MNIST."""
        config = self.config
        pick = rng.integers(0, len(self.examples), config.examples_per_batch)
        x = self.examples[pick]  # (E_b, 28, 28)
        if config.augment:
            x = augment(x, rng, EXAMPLE_AUGMENT)
        y = self.labels[pick]
        if config.replay_per_batch and len(self.replay_images):
            replay = rng.integers(0, len(self.replay_images), config.replay_per_batch)
            mnist = self.replay_images[replay].astype(np.float32) / 255.0  # (R_b, 28, 28)
            if config.augment:
                mnist = augment(mnist, rng)
            x = np.concatenate([x, mnist])
            y = np.concatenate([y, self.replay_labels[replay]])
        return x, y

    def steps(self, rng: np.random.Generator) -> Iterator[StepResult]:
        """config.steps optimizer steps; the caller may look at the model between them."""
        for _ in range(self.config.steps):
            x, y = self.batch(rng)
            logits, caches = self.model.forward_train(x[..., None], rng)
            loss, grad_logits = softmax_cross_entropy(logits, y)
            self.optimizer.step(self.model.parameter_gradients(grad_logits, caches))
            correct = int((logits.argmax(axis=1) == y).sum())
            yield StepResult(self.optimizer.steps, 1, len(y), float(loss), correct)


def blend_towards(model: Sequential, base: Sequential, keep_base: float) -> None:
    """model <- (1 - keep_base) * model + keep_base * base, parameter by parameter: averaging the
    tuned weights with the ones they started from keeps most of what was taught and most of
    what MNIST taught (WiSE-FT, Wortsman et al. 2022; measured in docs/training.md)."""
    if keep_base <= 0:
        return
    tuned, start = model.state_dict(), base.state_dict()
    blended = {
        key: ((1 - keep_base) * value + keep_base * start[key]).astype(value.dtype)
        for key, value in tuned.items()
    }
    model.load_state_dict(blended, source="blended with the base")


def weight_changes(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, float]:
    """Per parameter array, |after - before| / |before| (Frobenius norms): how much it moved."""
    return {
        key: float(np.linalg.norm(after[key] - value)) / max(float(np.linalg.norm(value)), 1e-12)
        for key, value in before.items()
    }


def filters_moved(before: Sequential, after: Sequential) -> tuple[str, list[tuple[int, float]]]:
    """The first convolution's name and its filters by how much they moved, most first:
    (channel, |k_after - k_before| / |k_before|) per filter."""
    for old, new in zip(before, after, strict=True):
        if isinstance(old, Conv2D) and isinstance(new, Conv2D):
            k0, k1 = old.kernels(), new.kernels()  # (F, C, kh, kw)
            moved = np.linalg.norm((k1 - k0).reshape(len(k0), -1), axis=1)  # (F,)
            size = np.maximum(np.linalg.norm(k0.reshape(len(k0), -1), axis=1), 1e-12)
            ranked = sorted(enumerate((moved / size).tolist()), key=lambda pair: -pair[1])
            return old.name, [(int(c), float(v)) for c, v in ranked]
    return "", []
