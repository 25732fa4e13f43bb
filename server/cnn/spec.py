"""Check a layer-spec JSON before anything is built or trained, naming each layer's problem.

The spec is the `Sequential.spec()` format the weights file stores:
{"input_shape": [H, W, C], "layers": [{"kind": ..., "name": ..., <config>}, ...]}.
`Sequential.from_spec` trusts it (it rebuilds files this engine wrote); a spec a person wrote
goes through `validate_spec` or `build_from_spec` first.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from typing import Any

import numpy as np

from server.cnn.layers import LAYER_KINDS, Layer
from server.cnn.model import Sequential

# Bounds that keep a spec from asking for more memory than training here could ever use.
MAX_LAYERS = 100
MAX_PARAMETERS = 10_000_000  # per layer; the default network has 0.42M in all
MAX_ACTIVATIONS = 2_000_000  # values in one layer's output for one image
NOT_FIELDS = {"self", "name", "rng"}  # constructor arguments that are not config


class SpecError(ValueError):
    """A spec that cannot be built; `problems` lists each, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def fields_of(cls: type[Layer]) -> dict[str, inspect.Parameter]:
    """The config fields a layer kind takes, from its constructor: name -> parameter."""
    parameters = inspect.signature(cls.__init__).parameters
    return {key: p for key, p in parameters.items() if key not in NOT_FIELDS}


def describe(annotation: Any) -> str:
    """A type annotation in JSON's words, for messages: `int | None` -> "an integer or null"."""
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    if not options:
        return names.get(annotation, str(annotation))
    return " or ".join("null" if o is type(None) else names.get(o, str(o)) for o in options)


def matches(value: Any, annotation: Any) -> bool:
    """Is a JSON value of the annotated type? bool is not an integer here, ints are numbers."""
    if isinstance(annotation, types.UnionType):
        return any(matches(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def field_problems(cls: type[Layer], config: dict[str, Any]) -> list[str]:
    """Unknown, missing and mistyped fields; integer sizes must be >= 1."""
    fields = fields_of(cls)
    hints = typing.get_type_hints(cls.__init__)
    problems = []
    for key in config:
        if key not in fields:
            problems.append(f"unknown field {key!r}; {cls.kind} takes {', '.join(fields)}")
    for key, parameter in fields.items():
        if key not in config:
            if parameter.default is inspect.Parameter.empty:
                problems.append(f"missing field {key!r}")
            continue
        value, annotation = config[key], hints[key]
        if not matches(value, annotation):
            problems.append(f"{key} must be {describe(annotation)}, got {value!r}")
        elif annotation in (int, int | None) and value is not None and value < 1:
            problems.append(f"{key} must be >= 1, got {value}")
    return problems


def fit_problems(
    kind: str, config: dict[str, Any], shape: tuple[int, ...]
) -> tuple[list[str], bool]:
    """Does the layer take an input of `shape` (one image, no batch axis)? Also says whether its
    output shape is still known (a wrong in_channels or in_features does not change it)."""
    shown = list(shape)
    if kind in ("conv2d", "maxpool2d", "avgpool2d"):
        if len(shape) != 3:
            message = (
                f"needs a feature map [H, W, C] but its input is a vector of {shape[0]} values; "
                "convolution and pooling go before the flatten"
            )
            return [message], False
        h, w, c = shape
        problems = []
        if kind == "conv2d" and config["in_channels"] != c:
            problems.append(
                f"in_channels is {config['in_channels']} but its input has {c} channel"
                f"{'s' * (c != 1)} ({shown})"
            )
        k = config["kernel_size"] if kind == "conv2d" else config.get("pool_size", 2)
        if k > h or k > w:
            what = "kernel" if kind == "conv2d" else "pool window"
            return [*problems, f"{what} {k}x{k} is larger than its {h}x{w} input"], False
        return problems, True
    if kind == "dense":
        if len(shape) != 1:
            return [f"needs a vector but its input is a {shown} map; put a flatten before it"], True
        if config["in_features"] != shape[0]:
            message = f"in_features is {config['in_features']} but its input has {shape[0]} values"
            return [message], True
    if kind == "batchnorm" and config["num_features"] != shape[-1]:
        message = (
            f"num_features is {config['num_features']} but its input has {shape[-1]} "
            f"{'channels' if len(shape) == 3 else 'values'} ({shown})"
        )
        return [message], False
    return [], True


def parameter_estimate(kind: str, config: dict[str, Any]) -> int:
    """Weights a conv or dense layer would allocate (the only kinds that can be huge)."""
    if kind == "conv2d":
        return int(config["kernel_size"] ** 2 * config["in_channels"] * config["out_channels"])
    if kind == "dense":
        return int(config["in_features"] * config["out_features"])
    return 0


def input_shape_problems(spec: dict[str, Any], expected: tuple[int, ...] | None) -> list[str]:
    if "input_shape" not in spec:
        return [] if expected is not None else ["missing field 'input_shape' ([H, W, C])"]
    shape = spec["input_shape"]
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    ):
        return [f"input_shape must be [H, W, C], three integers >= 1, got {shape!r}"]
    if expected is not None and tuple(shape) != expected:
        return [f"input_shape is {shape} but the images are {list(expected)}"]
    return []


class _Checker:
    """Walks the layers once, carrying the shape that flows between them while it is known."""

    def __init__(self, shape: tuple[int, ...] | None) -> None:
        self.shape = shape
        self.problems: list[str] = []
        self.names: set[str] = set()

    def layer(self, index: int, entry: Any) -> None:
        where = f"layers[{index}]"
        if not isinstance(entry, dict):
            self.fail(f"{where}: must be an object with kind, name and config, got {entry!r}")
            return
        config = dict(entry)
        kind, name = config.pop("kind", None), config.pop("name", None)
        if kind not in LAYER_KINDS:
            said = "missing field 'kind'" if kind is None else f"unknown kind {kind!r}"
            self.fail(f"{where}: {said}; known kinds are {', '.join(sorted(LAYER_KINDS))}")
            return
        where = f"{where} ({kind} {name!r})" if isinstance(name, str) else f"{where} ({kind})"
        local: list[str] = []
        if not isinstance(name, str) or not name:
            local.append(f"name must be a non-empty string, got {name!r}")
        elif name in self.names:
            local.append(f"name {name!r} is used by an earlier layer; names must be unique")
        else:
            self.names.add(name)
        cls = LAYER_KINDS[kind]
        fields = field_problems(cls, config)
        local += fields
        if not fields:
            local += self.build_problems(kind, str(name), config)
        else:
            self.shape = None  # cannot say what comes out of this layer
        self.problems += [f"{where}: {problem}" for problem in local]

    def build_problems(self, kind: str, name: str, config: dict[str, Any]) -> list[str]:
        """Fit to the incoming shape, size, then build the layer to learn its output shape."""
        problems: list[str] = []
        fits = self.shape is not None
        if self.shape is not None:
            problems, fits = fit_problems(kind, config, self.shape)
        estimate = parameter_estimate(kind, config)
        if estimate > MAX_PARAMETERS:
            self.shape = None
            return [*problems, f"{estimate:,} weights; at most {MAX_PARAMETERS:,} a layer"]
        try:
            layer = LAYER_KINDS[kind](name, **config)
            out = layer.output_shape(self.shape) if self.shape is not None and fits else None
        except ValueError as exc:
            self.shape = None
            return [*problems, str(exc).removeprefix(f"{name}: ")]
        if out is not None and math.prod(out) > MAX_ACTIVATIONS:
            problems.append(
                f"outputs {list(out)}, {math.prod(out):,} values an image; "
                f"at most {MAX_ACTIVATIONS:,}"
            )
            out = None
        self.shape = out
        return problems

    def fail(self, problem: str) -> None:
        self.problems.append(problem)
        self.shape = None


def validate_spec(
    spec: Any,
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = 10,
) -> list[str]:
    """Every problem that keeps `spec` from building a network that maps `input_shape` images
    to `num_classes` scores, one message each naming the layer; [] for a good spec.

    `input_shape` given: the spec may omit its own and must agree if it has one.
    """
    if not isinstance(spec, dict):
        return [f"the architecture must be a JSON object with input_shape and layers, got {spec!r}"]
    problems = [
        f"unknown field {key!r}; an architecture has input_shape and layers"
        for key in spec
        if key not in ("input_shape", "layers")
    ]
    problems += input_shape_problems(spec, input_shape)
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        return [*problems, f"layers must be a non-empty list of layers, got {layers!r}"]
    if len(layers) > MAX_LAYERS:
        return [*problems, f"{len(layers)} layers; at most {MAX_LAYERS}"]
    shape = spec.get("input_shape", input_shape)
    checker = _Checker(None if problems else tuple(shape))  # type: ignore[arg-type]
    for index, entry in enumerate(layers):
        checker.layer(index, entry)
    problems += checker.problems
    if checker.shape is not None and num_classes is not None and checker.shape != (num_classes,):
        problems.append(
            f"the network ends in {list(checker.shape)}; it must end in {num_classes} class "
            f"scores (a dense layer with out_features {num_classes})"
        )
    return problems


def build_from_spec(
    spec: Any,
    *,
    seed: int = 0,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = 10,
) -> Sequential:
    """A fresh network from a checked spec, its weights drawn from one seeded generator;
    SpecError lists every problem."""
    problems = validate_spec(spec, input_shape=input_shape, num_classes=num_classes)
    if problems:
        raise SpecError(problems)
    rng = np.random.default_rng(seed)
    layers = []
    for entry in spec["layers"]:
        config = dict(entry)
        cls = LAYER_KINDS[config.pop("kind")]
        if "rng" in inspect.signature(cls.__init__).parameters:
            config["rng"] = rng  # one stream: two layers of one shape start different
        layers.append(cls(**config))
    return Sequential(layers, tuple(spec.get("input_shape", input_shape)))
