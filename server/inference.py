"""What the API asks of a model, in the channels-first terms people read: [C, H, W].

Holds only read-only state (the model and facts about its file), so one instance serves every
request thread at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.atlas.neighbors import NeighborIndex, Neighbors
from server.atlas.store import Atlas, AtlasFileError, atlas_path, load_atlas
from server.cnn import (
    Conv2D,
    Dense,
    ModelFileError,
    Sequential,
    load_model,
    softmax,
)
from server.cnn.layers.windows import Pool2D
from server.cnn.serialize import state_sha256
from server.explain.edits import Edits, edited_model
from server.explain.saliency import SaliencyMethod, saliency_for
from server.ood.scorer import scorer_for

logger = logging.getLogger("convscope")

NUM_CLASSES = 10


@dataclass(frozen=True)
class LayerInfo:
    """One row of the architecture table."""

    name: str
    kind: str
    output_shape: list[int]  # [C, H, W] for maps, [F] for vectors
    parameters: int
    kernel_size: int | None = None
    stride: int | None = None
    padding: str | int | None = None


@dataclass(frozen=True)
class LayerMap:
    """A layer's output for one image, channels first; pool layers add their argmax mask."""

    name: str
    kind: str
    data: np.ndarray  # (C, H, W) or (F,)
    mask: np.ndarray | None = None  # (C, H_in, W_in) uint8


@dataclass(frozen=True)
class Explanation:
    """Prediction for one image plus whatever views of its forward pass were asked for."""

    label: int
    probabilities: np.ndarray  # (10,)
    layers: list[LayerMap] | None
    saliency: np.ndarray | None  # (28, 28)
    target: int | None
    baseline: np.ndarray | None = None  # (10,) the unedited network's probabilities, with edits
    digit_score: float = 0.0  # how much like the training digits (server.ood); higher = more
    is_digit: bool = True  # digit_score against the weights file's threshold
    neighbors: Neighbors | None = None  # the atlas's digits nearest to it, when asked


@dataclass(frozen=True)
class Classified:
    """A batch's probabilities and digit scores, from one forward pass."""

    probabilities: np.ndarray  # (N, 10)
    digit_scores: np.ndarray  # (N,)
    is_digit: np.ndarray  # (N,) bool


def channels_first(array: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (C, H, W); vectors pass through."""
    return array.transpose(2, 0, 1) if array.ndim == 3 else array


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atlas_beside(path: Path, model: Sequential) -> Atlas | None:
    """The atlas `convscope atlas` wrote for this weights file, if there is one and it was
    computed for these very weights; a stale or unreadable one is logged and not served."""
    where = atlas_path(path)
    if not where.is_file():
        return None
    try:
        atlas = load_atlas(where)
    except AtlasFileError as error:
        logger.warning("skipped atlas: %s", error)
        return None
    if atlas.weights != state_sha256(model.state_dict()):
        logger.warning("skipped atlas %s: computed for other weights than %s", where, path)
        return None
    return atlas


class Predictor:
    """A loaded model and the questions the API asks of it."""

    def __init__(
        self,
        model: Sequential,
        metadata: dict[str, Any],
        sha256: str,
        extras: dict[str, np.ndarray] | None = None,
        atlas: Atlas | None = None,
    ) -> None:
        self.model = model
        self.metadata = metadata
        self.sha256 = sha256
        self.scorer = scorer_for(metadata, extras or {})  # ValueError: a malformed digit_score
        self.input_shape = model.input_shape  # (28, 28, 1)
        self.atlas = atlas
        self._neighbor_index: NeighborIndex | None = None
        self._index_lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> Predictor:
        """Load and rebuild; raises serialize.ModelFileError naming the file."""
        loaded = load_model(path)
        try:
            return cls(
                loaded.model,
                loaded.metadata,
                file_sha256(path),
                loaded.extras,
                atlas_beside(path, loaded.model),
            )
        except ValueError as error:
            raise ModelFileError(path, str(error)) from error

    @property
    def neighbor_index(self) -> NeighborIndex:
        """The atlas digits' vectors, computed by the first caller (a second or so) and shared
        read-only afterwards; the model must have an atlas."""
        assert self.atlas is not None, "neighbours need an atlas"
        with self._index_lock:
            if self._neighbor_index is None:
                self._neighbor_index = NeighborIndex.of(self.model, self.atlas)
            return self._neighbor_index

    def _batch(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) in [0, 1] -> (N, 28, 28, 1) float32."""
        return np.ascontiguousarray(images, dtype=np.float32)[..., None]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, 10) for (N, 28, 28) images, in one forward pass."""
        return self.classify(images).probabilities

    def classify(self, images: np.ndarray) -> Classified:
        """Probabilities and digit scores for (N, 28, 28) images, in one forward pass."""
        logits, scores = self.scorer.forward(self.model, self._batch(images))
        return Classified(softmax(logits), scores, self.scorer.is_digit(scores))

    def explain(
        self,
        image: np.ndarray,
        *,
        activations: bool,
        saliency: bool,
        target: int | None,
        saliency_method: SaliencyMethod = "gradient",
        edits: Edits | None = None,
        neighbors: bool = False,
    ) -> Explanation:
        """Forward one (28, 28) image with a trace, through the network as `edits` change it for
        this request alone; the saliency explains that network, and `neighbors` (the model
        must have an atlas) place it among the atlas's digits. EditError for a bad edit."""
        x = self._batch(image[None])
        model = self.model if edits is None else edited_model(self.model, edits)
        trace = model.trace(x)
        probabilities = softmax(trace.logits)[0]
        label = int(probabilities.argmax())
        layers = None
        if activations:
            layers = [
                LayerMap(
                    t.name,
                    t.kind,
                    channels_first(t.output[0]),
                    None if t.mask is None else channels_first(t.mask[0]),
                )
                for t in trace.layers
            ]
            layers.append(LayerMap("softmax", "softmax", probabilities))
        saliency_map, explained = None, None
        if saliency:
            explained = label if target is None else target
            saliency_map = saliency_for(model, trace, explained, saliency_method)
        baseline = None if edits is None else softmax(self.model.forward(x))[0]
        score = float(self.scorer.score_trace(trace)[0])  # the (edited) network's own features
        near = None
        if neighbors:
            assert self.atlas is not None, "neighbours need an atlas"
            vector = next(t.output[0] for t in trace.layers if t.name == self.atlas.layer)
            near = self.neighbor_index.nearest(vector)
        return Explanation(
            label,
            probabilities,
            layers,
            saliency_map,
            explained,
            baseline,
            score,
            bool(self.scorer.is_digit(np.array([score]))[0]),
            near,
        )

    def architecture(self) -> list[LayerInfo]:
        """Every layer with its output shape and geometry, then the softmax the API adds."""
        rows = []
        for layer, shape in zip(self.model.layers, self.model.output_shapes, strict=True):
            geometry: dict[str, Any] = {}
            if isinstance(layer, Conv2D):
                geometry = {
                    "kernel_size": layer.kernel_size,
                    "stride": layer.stride,
                    "padding": layer.padding,
                }
            elif isinstance(layer, Pool2D):
                geometry = {
                    "kernel_size": layer.pool_size,
                    "stride": layer.stride,
                    "padding": "valid",
                }
            chw = [shape[2], shape[0], shape[1]] if len(shape) == 3 else list(shape)
            count = sum(int(p.size) for p in layer.params.values())
            rows.append(LayerInfo(layer.name, layer.kind, chw, count, **geometry))
        rows.append(LayerInfo("softmax", "softmax", [NUM_CLASSES], 0))
        return rows

    def layer_weights(self, name: str) -> tuple[str, np.ndarray | None, np.ndarray | None]:
        """(kind, weight, bias) in PyTorch's layout: conv [F, C, kh, kw], dense [out, in].

        KeyError for an unknown layer name.
        """
        if name == "softmax":
            return "softmax", None, None
        layer = self.model.layer(name)
        if isinstance(layer, Conv2D):
            weight = layer.kernels()  # (F, C, kh, kw)
        elif isinstance(layer, Dense):
            weight = layer.params["weight"].T  # (in, out) -> (out, in)
        else:
            return layer.kind, None, None
        return layer.kind, weight, layer.params.get("bias")
