"""validate_spec: one plain message per problem, naming the layer; build_from_spec builds the rest.

Each bad spec below is a good one with one thing broken, so each test shows that exactly that
thing is caught, and that a good spec passes (the checks do not refuse everything).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from server.cnn import LAYER_KINDS, Sequential
from server.cnn.architectures import PRESETS, build_preset
from server.cnn.spec import SpecError, build_from_spec, validate_spec

GOOD: dict[str, Any] = {
    "input_shape": [28, 28, 1],
    "layers": [
        {"kind": "conv2d", "name": "conv1", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
        {"kind": "batchnorm", "name": "bn1", "num_features": 4},
        {"kind": "relu", "name": "relu1"},
        {"kind": "avgpool2d", "name": "pool1", "pool_size": 2},
        {"kind": "conv2d", "name": "conv2", "in_channels": 4, "out_channels": 8, "kernel_size": 3,
         "stride": 2, "padding": "valid"},
        {"kind": "tanh", "name": "tanh1"},
        {"kind": "flatten", "name": "flatten"},
        {"kind": "dense", "name": "fc1", "in_features": 6 * 6 * 8, "out_features": 16},
        {"kind": "sigmoid", "name": "sig"},
        {"kind": "dropout", "name": "drop", "rate": 0.25},
        {"kind": "dense", "name": "fc2", "in_features": 16, "out_features": 10},
    ],
}  # fmt: skip


def broken(index: int | None = None, **changes: Any) -> dict[str, Any]:
    """GOOD with layer `index` updated by `changes` (a value of None deletes the field)."""
    spec = copy.deepcopy(GOOD)
    if index is not None:
        for key, value in changes.items():
            if value is None:
                spec["layers"][index].pop(key)
            else:
                spec["layers"][index][key] = value
    return spec


def only_problem(spec: Any, **kwargs: Any) -> str:
    problems = validate_spec(spec, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_good_spec_and_every_preset_pass_and_build() -> None:
    assert validate_spec(GOOD) == []
    model = build_from_spec(GOOD, seed=3)
    assert model.output_shapes[-1] == (10,)
    assert model.spec() == Sequential.from_spec(json.loads(json.dumps(model.spec()))).spec()
    for name in PRESETS:
        assert validate_spec(build_preset(name).spec()) == [], name


def test_build_draws_every_layer_from_one_seeded_stream() -> None:
    """Two same-shaped layers start different; the same seed gives the same network."""
    spec = broken()
    spec["layers"][7]["out_features"] = 10  # fc1 16 -> 10, then an identical 10x10 twin
    spec["layers"][10] = {"kind": "dense", "name": "fc2", "in_features": 10, "out_features": 10}
    spec["layers"].insert(
        8, {"kind": "dense", "name": "fc1b", "in_features": 10, "out_features": 10}
    )
    a, b = build_from_spec(spec, seed=1), build_from_spec(spec, seed=1)
    for key, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[key])
    first, second = a.parameters()["fc1b.weight"], a.parameters()["fc2.weight"]
    assert first.shape == second.shape
    assert not np.array_equal(first, second)
    c = build_from_spec(spec, seed=2)
    assert not np.array_equal(a.parameters()["conv1.weight"], c.parameters()["conv1.weight"])


def test_build_raises_with_every_problem() -> None:
    spec = broken(0, in_channels=3)
    spec["layers"][2]["kind"] = "gelu"
    with pytest.raises(SpecError) as caught:
        build_from_spec(spec)
    assert len(caught.value.problems) == 2
    assert str(caught.value) == "\n".join(caught.value.problems)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            broken(2, kind="gelu"),
            "layers[2]: unknown kind 'gelu'; known kinds are " + ", ".join(sorted(LAYER_KINDS)),
        ),
        (broken(2, kind=None), "layers[2]: missing field 'kind'; known kinds are avgpool2d"),
        (
            broken(0, kernal_size=3),
            "layers[0] (conv2d 'conv1'): unknown field 'kernal_size'; conv2d takes in_channels, "
            "out_channels, kernel_size, stride, padding, bias",
        ),
        (broken(0, kernel_size=None), "layers[0] (conv2d 'conv1'): missing field 'kernel_size'"),
        (
            broken(0, kernel_size="3"),
            "layers[0] (conv2d 'conv1'): kernel_size must be an integer, got '3'",
        ),
        (broken(0, kernel_size=3.0), "kernel_size must be an integer, got 3.0"),
        (broken(0, bias=1), "layers[0] (conv2d 'conv1'): bias must be true or false, got 1"),
        (broken(0, out_channels=0), "layers[0] (conv2d 'conv1'): out_channels must be >= 1, got 0"),
        (broken(3, stride=True), "stride must be an integer or null, got True"),
        (broken(9, rate="half"), "layers[9] (dropout 'drop'): rate must be a number, got 'half'"),
        (broken(9, rate=1), "layers[9] (dropout 'drop'): rate must be in [0, 1), got 1"),
        (broken(1, momentum=2.0), "layers[1] (batchnorm 'bn1'): momentum must be in [0, 1]"),
        (
            broken(0, padding="full"),
            "layers[0] (conv2d 'conv1'): padding must be 'same', 'valid' or an int >= 0, "
            "got 'full'",
        ),
        (broken(2, name=None), "layers[2] (relu): name must be a non-empty string, got None"),
        (
            broken(2, name="conv1"),
            "layers[2] (relu 'conv1'): name 'conv1' is used by an earlier layer; names must be "
            "unique",
        ),
    ],
)
def test_field_problems_name_the_layer(spec: dict[str, Any], message: str) -> None:
    problem = only_problem(spec)
    assert problem.startswith(message) or problem.endswith(message), problem


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            broken(0, in_channels=3),
            "layers[0] (conv2d 'conv1'): in_channels is 3 but its input has 1 channel "
            "([28, 28, 1])",
        ),
        (
            broken(4, in_channels=2),
            "layers[4] (conv2d 'conv2'): in_channels is 2 but its input has 4 channels "
            "([14, 14, 4])",
        ),
        (
            broken(7, in_features=100),
            "layers[7] (dense 'fc1'): in_features is 100 but its input has 288 values",
        ),
        (
            broken(1, num_features=3),
            "layers[1] (batchnorm 'bn1'): num_features is 3 but its input has 4 channels "
            "([28, 28, 4])",
        ),
        (
            broken(4, kernel_size=15),
            "layers[4] (conv2d 'conv2'): kernel 15x15 is larger than its 14x14 input",
        ),
        (
            broken(3, pool_size=29),
            "layers[3] (avgpool2d 'pool1'): pool window 29x29 is larger than its 28x28 input",
        ),
        (
            broken(10, out_features=12),
            "the network ends in [12]; it must end in 10 class scores "
            "(a dense layer with out_features 10)",
        ),
        (
            broken(10, kind="relu", in_features=None, out_features=None),
            "the network ends in [16]; it must end in 10 class scores",
        ),
        (
            broken(6, kind="relu"),  # no flatten: the dense meets a map
            "layers[7] (dense 'fc1'): needs a vector but its input is a [6, 6, 8] map; "
            "put a flatten before it",
        ),
        (
            broken(4, out_channels=3_000_000),
            "layers[4] (conv2d 'conv2'): 108,000,000 weights; at most 10,000,000 a layer",
        ),
        (
            broken(0, out_channels=5000, padding="same"),
            "layers[0] (conv2d 'conv1'): outputs [28, 28, 5000], 3,920,000 values an image",
        ),
    ],
)
def test_shape_problems_name_the_layer(spec: dict[str, Any], message: str) -> None:
    problems = validate_spec(spec)
    assert problems, "expected a problem"
    assert problems[0].startswith(message), problems


def test_conv_after_flatten_is_named() -> None:
    spec = {"input_shape": [28, 28, 1], "layers": [
        {"kind": "flatten", "name": "flat"},
        {"kind": "conv2d", "name": "c", "in_channels": 1, "out_channels": 2, "kernel_size": 3},
    ]}  # fmt: skip
    assert only_problem(spec) == (
        "layers[1] (conv2d 'c'): needs a feature map [H, W, C] but its input is a vector of 784 "
        "values; convolution and pooling go before the flatten"
    )


def test_valid_kernel_that_does_not_fit_after_striding() -> None:
    spec = {"input_shape": [5, 5, 1], "layers": [
        {"kind": "conv2d", "name": "c", "in_channels": 1, "out_channels": 2, "kernel_size": 5,
         "padding": 1, "stride": 1},
        {"kind": "maxpool2d", "name": "p", "pool_size": 3, "stride": 3},
        {"kind": "flatten", "name": "f"},
        {"kind": "dense", "name": "d", "in_features": 2, "out_features": 10},
    ]}  # fmt: skip
    assert validate_spec(spec) == []  # 5x5 conv, pad 1 -> 3x3 maps; pool 3 -> 1x1x2
    spec["layers"][0]["padding"] = "valid"  # -> 1x1 maps, and the pool no longer fits
    assert (
        only_problem(spec)
        == "layers[1] (maxpool2d 'p'): pool window 3x3 is larger than its 1x1 input"
    )


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ([], {}, "the architecture must be a JSON object with input_shape and layers, got []"),
        (
            {**GOOD, "layer": []},
            {},
            "unknown field 'layer'; an architecture has input_shape and layers",
        ),
        (
            {"input_shape": [28, 28, 1], "layers": []},
            {},
            "layers must be a non-empty list of layers, got []",
        ),
        (
            {**GOOD, "input_shape": [28, 28]},
            {},
            "input_shape must be [H, W, C], three integers >= 1, got [28, 28]",
        ),
        (
            {**GOOD, "input_shape": [32, 32, 1]},
            {"input_shape": (28, 28, 1)},
            "input_shape is [32, 32, 1] but the images are [28, 28, 1]",
        ),
        ({"layers": GOOD["layers"]}, {}, "missing field 'input_shape' ([H, W, C])"),
        (
            {**GOOD, "layers": [*GOOD["layers"], "relu"]},
            {},
            "layers[11]: must be an object with kind, name and config, got 'relu'",
        ),
        (
            {**GOOD, "layers": GOOD["layers"] * 10},
            {},
            "110 layers; at most 100",
        ),
    ],
)
def test_whole_spec_problems(spec: Any, kwargs: dict[str, Any], message: str) -> None:
    assert only_problem(spec, **kwargs) == message


def test_input_shape_may_come_from_the_caller() -> None:
    spec = {"layers": GOOD["layers"]}
    assert validate_spec(spec, input_shape=(28, 28, 1)) == []
    model = build_from_spec(spec, input_shape=(28, 28, 1))
    assert model.input_shape == (28, 28, 1)


def test_several_problems_are_all_reported() -> None:
    spec = broken(0, in_channels=3)
    spec["layers"][9]["rate"] = 1.5
    spec["layers"][10]["out_features"] = 11
    problems = validate_spec(spec)
    assert [p.split(":")[0] for p in problems] == [
        "layers[0] (conv2d 'conv1')",
        "layers[9] (dropout 'drop')",
    ]  # after the dropout the shape is unknown, so the end is not judged
