"""A sequential network: plain forward for speed, a trace for looking inside, backward for both."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.cnn.fusion import Step, plan
from server.cnn.layers import LAYER_KINDS, Layer

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class LayerTrace:
    """One layer's output for a batch, and for max-pool layers the argmax mask of its input."""

    name: str
    kind: str
    output: np.ndarray  # (N, H, W, C) or (N, F)
    mask: np.ndarray | None = None  # (N, H_in, W_in, C) uint8, pool layers only


@dataclass(frozen=True)
class Trace:
    """Everything one forward pass saw; owned by the caller, so threads never share it."""

    input: np.ndarray
    logits: np.ndarray
    layers: list[LayerTrace]
    caches: list[Any]


def dotted(layer: Layer, params: Params) -> Params:
    """A layer's own keys ("weight") as the model's ("conv1.weight")."""
    return {f"{layer.name}.{key}": value for key, value in params.items()}


class Sequential:
    """Layers applied in order to NHWC float32 input; returns logits."""

    def __init__(self, layers: Sequence[Layer], input_shape: tuple[int, ...]) -> None:
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique, repeated: {duplicates}")
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        self.output_shapes = self._infer_shapes()
        self._plans: dict[tuple[tuple[int, ...], frozenset[str]], list[Step]] = {}

    def _plan(self, keep: Collection[str]) -> list[Step]:
        """The fused steps for these kept outputs, made once (a few microseconds a pass)."""
        key = (tuple(map(id, self.layers)), frozenset(keep))
        steps = self._plans.get(key)
        if steps is None:
            steps = self._plans[key] = plan(self.layers, self.output_shapes, keep)
        return steps

    def _infer_shapes(self) -> list[tuple[int, ...]]:
        shapes, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
            shapes.append(shape)
        return shapes

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        """The layer called `name`; KeyError names the known ones."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers are {[layer.name for layer in self.layers]}")

    def _check_input(self, x: np.ndarray) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected input (N, {', '.join(map(str, self.input_shape))}), got {x.shape}"
            )

    def forward(
        self, x: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Logits (N, classes); keeps no caches, so memory stays flat for big batches."""
        return self.forward_keeping(x, frozenset(), training=training, rng=rng)[0]

    def forward_keeping(
        self,
        x: np.ndarray,
        names: Collection[str],
        *,
        training: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logits (N, classes) and the outputs of the named layers, from one pass without
        caches (what a digit score reads beside the answer)."""
        self._check_input(x)
        kept = {}
        for step in self._plan(names):
            x, _ = step.forward(x, training, rng)
            if step.layers[-1].name in names:  # inner layers are fused only when not kept
                kept[step.layers[-1].name] = x
        return x, kept

    def forward_train(
        self, x: np.ndarray, rng: np.random.Generator | None = None, *, training: bool = True
    ) -> tuple[np.ndarray, list[Any]]:
        """Logits plus the per-layer caches that `backward` consumes."""
        self._check_input(x)
        caches = []
        for step in self._plan(()):
            x, step_caches = step.forward(x, training, rng)
            caches += step_caches
        return x, caches

    def trace(self, x: np.ndarray) -> Trace:
        """Inference pass that keeps every layer's output and every pooling mask: layer by
        layer, nothing fused."""
        self._check_input(x)
        inputs, layers, caches = x, [], []
        for layer in self.layers:
            output, cache = layer.forward(inputs)
            layers.append(LayerTrace(layer.name, layer.kind, output, layer.mask(cache)))
            caches.append(cache)
            inputs = output
        return Trace(input=x, logits=inputs, layers=layers, caches=caches)

    def backward(self, grad_logits: np.ndarray, caches: Sequence[Any]) -> tuple[np.ndarray, Params]:
        """The gradient w.r.t. the input and the parameter gradients (flat dotted keys), in the
        order a layer's `backward` returns them."""
        return self._backward_down_to(0, grad_logits, caches)

    def parameter_gradients(self, grad_logits: np.ndarray, caches: Sequence[Any]) -> Params:
        """What `backward` gives but the gradient below the first layer with parameters, which
        training never uses (a first conv's col2im, an mlp's first dense input product)."""
        first = next((i for i, layer in enumerate(self.layers) if layer.params), None)
        if first is None:
            return {}
        grad, grads = self._backward_down_to(first + 1, grad_logits, caches)
        layer = self.layers[first]
        grads.update(dotted(layer, layer.parameter_gradients(grad, caches[first])))
        return grads

    def _backward_down_to(
        self, stop: int, grad: np.ndarray, caches: Sequence[Any]
    ) -> tuple[np.ndarray, Params]:
        """Backward through the layers from the last down to index `stop`: the gradient w.r.t.
        layer `stop`'s input, and their parameters' gradients."""
        if len(caches) != len(self.layers):
            raise ValueError(f"{len(caches)} caches for {len(self.layers)} layers")
        grads: Params = {}
        for index in range(len(self.layers) - 1, stop - 1, -1):
            layer = self.layers[index]
            grad, layer_grads = layer.backward(grad, caches[index])
            grads.update(dotted(layer, layer_grads))
        return grad, grads

    def parameters(self) -> Params:
        """Live references to every parameter, keyed `layer.param`; the optimizer edits these."""
        return {
            f"{layer.name}.{key}": value
            for layer in self.layers
            for key, value in layer.params.items()
        }

    def state_dict(self) -> Params:
        """Live references to everything the weights file stores: parameters, then buffers."""
        buffers = {
            f"{layer.name}.{key}": value
            for layer in self.layers
            for key, value in layer.buffers.items()
        }
        return {**self.parameters(), **buffers}

    def parameter_count(self) -> int:
        return sum(int(p.size) for p in self.parameters().values())

    def load_state_dict(self, state: Params, source: str = "state dict") -> None:
        """Copy arrays into the parameters and buffers; errors name the key and both shapes."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"{source}: missing parameters {missing}, unexpected {unexpected}")
        for key, target in own.items():
            value = state[key]
            if value.shape != target.shape:
                raise ValueError(
                    f"{source}: parameter {key!r} has shape {value.shape}, "
                    f"model expects {target.shape}"
                )
            target[...] = value

    def spec(self) -> dict[str, Any]:
        """JSON architecture that `from_spec` rebuilds without any code of the caller's."""
        return {
            "input_shape": list(self.input_shape),
            "layers": [layer.spec() for layer in self.layers],
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Sequential:
        layers = []
        for entry in spec["layers"]:
            entry = dict(entry)
            kind = entry.pop("kind")
            if kind not in LAYER_KINDS:
                raise ValueError(f"unknown layer kind {kind!r}; known: {sorted(LAYER_KINDS)}")
            layers.append(LAYER_KINDS[kind](**entry))
        return cls(layers, tuple(spec["input_shape"]))
