"""digit_score and is_digit: a sum of standardised terms, each higher for more digit-like input.

The terms: the Mahalanobis score of each feature source (server.ood.features) and the energy of
the logits, each standardised by its median and spread on MNIST training digits, so no single
term's scale dominates. Stored in the weights file: the method, terms and threshold in the
metadata (`digit_score`), the Gaussians as `extra/digit_score/<layer>/{whiten,means}` arrays.
A file without them is scored by its top softmax probability against FALLBACK_THRESHOLD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from server.cnn import Sequential, Trace
from server.ood.features import Source, outputs_of_trace
from server.ood.scores import ClassGaussians, energy, max_logit, top_probability

TermKind = Literal["mahalanobis", "energy", "max_logit", "top_probability"]
LOGIT_SCORES = {"energy": energy, "max_logit": max_logit, "top_probability": top_probability}
FALLBACK_THRESHOLD = 0.9  # top softmax probability, for a weights file never calibrated
EXTRA_PREFIX = "digit_score/"


@dataclass(frozen=True)
class Term:
    """One score, standardised: (raw - center) / scale."""

    kind: TermKind
    center: float = 0.0
    scale: float = 1.0
    source: Source | None = None  # mahalanobis only
    gaussians: ClassGaussians | None = None  # mahalanobis only

    @property
    def name(self) -> str:
        if self.source is None:
            return self.kind
        return f"{self.kind}({self.source.layer}{', channel means' if self.source.pooled else ''})"

    def raw(self, logits: np.ndarray, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The unstandardised score (N,), higher = more digit-like."""
        if self.kind == "mahalanobis":
            assert self.source is not None, "a mahalanobis term reads a layer"
            assert self.gaussians is not None, "a mahalanobis term is fitted"
            return self.gaussians.score(self.source.read(outputs[self.source.layer]))
        return LOGIT_SCORES[self.kind](logits)

    def value(self, logits: np.ndarray, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return (self.raw(logits, outputs) - self.center) / self.scale


@dataclass(frozen=True)
class DigitScorer:
    """Turns one forward pass into a digit_score per input, and is_digit against `threshold`."""

    terms: tuple[Term, ...]
    threshold: float

    @property
    def method(self) -> str:
        return " + ".join(t.name for t in self.terms)

    @property
    def layers(self) -> set[str]:
        return {t.source.layer for t in self.terms if t.source is not None}

    def score(self, logits: np.ndarray, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """digit_score (N,) from the logits (N, K) and the feature layers' outputs."""
        total = np.zeros(len(logits), dtype=np.float64)
        for term in self.terms:
            total += term.value(logits, outputs)
        return total

    def score_trace(self, trace: Trace) -> np.ndarray:
        return self.score(trace.logits, outputs_of_trace(trace, self.layers))

    def forward(self, model: Sequential, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, K) and digit_score (N,) of (N, H, W, C) input, in one inference pass."""
        logits, outputs = model.forward_keeping(x, self.layers)
        return logits, self.score(logits, outputs)

    def is_digit(self, scores: np.ndarray) -> np.ndarray:
        return scores >= self.threshold

    def stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata entry, extra arrays) for the weights file."""
        terms, extras = [], {}
        for term in self.terms:
            entry: dict[str, Any] = {"kind": term.kind, "center": term.center, "scale": term.scale}
            if term.source is not None and term.gaussians is not None:
                entry |= {"layer": term.source.layer, "pooled": term.source.pooled}
                key = f"{EXTRA_PREFIX}{term.source.layer}/"
                extras[key + "whiten"] = term.gaussians.whiten
                extras[key + "means"] = term.gaussians.means
            terms.append(entry)
        return {"method": self.method, "threshold": self.threshold, "terms": terms}, extras

    @classmethod
    def from_stored(cls, entry: dict[str, Any], extras: dict[str, np.ndarray]) -> DigitScorer:
        """Rebuild from the weights file's metadata entry and extra arrays; ValueError names
        what is missing or malformed."""
        try:
            terms = []
            for item in entry["terms"]:
                kind = item["kind"]
                if kind not in ("mahalanobis", *LOGIT_SCORES):
                    raise ValueError(f"unknown digit_score term {kind!r}")
                source = gaussians = None
                if kind == "mahalanobis":
                    source = Source(str(item["layer"]), bool(item["pooled"]))
                    key = f"{EXTRA_PREFIX}{source.layer}/"
                    gaussians = ClassGaussians(extras[key + "whiten"], extras[key + "means"])
                terms.append(
                    Term(kind, float(item["center"]), float(item["scale"]), source, gaussians)
                )
            return cls(tuple(terms), float(entry["threshold"]))
        except KeyError as error:
            raise ValueError(f"digit_score: missing {error}") from None
        except (TypeError, AttributeError) as error:
            raise ValueError(f"digit_score: malformed ({error})") from None


FALLBACK = DigitScorer((Term("top_probability"),), FALLBACK_THRESHOLD)


def scorer_for(metadata: dict[str, Any], extras: dict[str, np.ndarray]) -> DigitScorer:
    """The scorer a weights file carries, or FALLBACK when it carries none."""
    entry = metadata.get("digit_score")
    return FALLBACK if entry is None else DigitScorer.from_stored(entry, extras)
