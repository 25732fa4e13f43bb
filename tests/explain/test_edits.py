"""Request-scoped edits against independent references: an ablation equals the same network with
its weights zeroed by hand, a new filter equals a naive-loop cross-correlation with it, and the
served model is never written to."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from server.cnn import Sequential
from server.cnn.architectures import mnist_cnn
from server.explain.edits import (
    MAX_ABLATED_PER_LAYER,
    Ablation,
    EditError,
    Edits,
    KernelEdit,
    edited_model,
)
from server.explain.saliency import gradient_times_input


@pytest.fixture(scope="module")
def model() -> Sequential:
    """mnist_cnn with random weights and random (non-zero) biases, so zeroing a bias matters."""
    net = mnist_cnn(seed=7)
    gen = np.random.default_rng(7)
    for key, value in net.parameters().items():
        if key.endswith(".bias"):
            value[...] = gen.normal(0.0, 0.1, value.shape)
    return net


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    """(1, 28, 28, 1): a blurred ring, sparse like a digit."""
    y, x = np.mgrid[:28, :28]
    ring = np.exp(-(((np.hypot(y - 14, x - 13) - 7) / 1.6) ** 2))
    return ring.astype(np.float32)[None, :, :, None]


def outputs(net: Sequential, x: np.ndarray) -> dict[str, np.ndarray]:
    return {t.name: t.output[0] for t in net.trace(x).layers}


def snapshot(net: Sequential) -> dict[str, np.ndarray]:
    return {key: value.copy() for key, value in net.parameters().items()}


def by_hand(net: Sequential, zeroed: dict[str, Any]) -> Sequential:
    """A deep copy of `net` with parameter slices set to 0: zeroed={"conv1.weight": index}."""
    twin = copy.deepcopy(net)
    params = twin.parameters()
    for key, index in zeroed.items():
        params[key][index] = 0.0
    return twin


# --- ablation --------------------------------------------------------------------------------

# Each ablation, and the weights that, zeroed, silence the same channels for every later layer.
EQUIVALENT = {
    # the channel's own filter and bias
    "conv1": ([3, 7], {"conv1.weight": np.s_[..., [3, 7]], "conv1.bias": np.s_[[3, 7]]}),
    "fc1": ([13, 26], {"fc1.weight": np.s_[:, [13, 26]], "fc1.bias": np.s_[[13, 26]]}),
    # parameter-free layers: the next weighted layer's weights that read those channels
    "pool1": ([4], {"conv2.weight": np.s_[:, :, 4, :]}),
    "relu2": ([0, 63], {"conv2.weight": np.s_[..., [0, 63]], "conv2.bias": np.s_[[0, 63]]}),
    "flatten": ([2, 100, 3135], {"fc1.weight": np.s_[[2, 100, 3135], :]}),
    "dropout": ([1, 2, 127], {"fc2.weight": np.s_[[1, 2, 127], :]}),
}
NEXT_RELU = {"conv1": "relu1", "conv2": "relu2", "fc1": "relu3"}
# where the by-hand twin starts to agree: at the layer itself when its own weights (or those of
# the layer before a ReLU) are zeroed, one layer later when the next layer's inputs are
TWIN_FROM_NEXT = {"pool1", "flatten", "dropout"}
ORDER = [
    "conv1",
    "relu1",
    "pool1",
    "conv2",
    "relu2",
    "pool2",
    "flatten",
    "fc1",
    "relu3",
    "dropout",
    "fc2",
]


@pytest.mark.parametrize("layer", list(EQUIVALENT))
def test_ablation_zeroes_the_channels_and_the_rest_equals_zeroed_weights(
    model: Sequential, x: np.ndarray, layer: str
) -> None:
    channels, zeroed = EQUIVALENT[layer]
    before = snapshot(model)
    edited = outputs(edited_model(model, Edits(ablate=[Ablation(layer, channels)])), x)
    original = outputs(model, x)
    twin = outputs(by_hand(model, zeroed), x)
    at = ORDER.index(layer)
    for name in ORDER[:at]:  # upstream: untouched
        np.testing.assert_array_equal(edited[name], original[name], err_msg=name)
    assert np.all(edited[layer][..., channels] == 0), layer
    assert np.any(original[layer][..., channels] != 0), "the test needs live channels"
    others = np.setdiff1d(np.arange(edited[layer].shape[-1]), channels)
    np.testing.assert_array_equal(edited[layer][..., others], original[layer][..., others])
    if layer in NEXT_RELU:
        assert np.all(edited[NEXT_RELU[layer]][..., channels] == 0), NEXT_RELU[layer]
    downstream = ORDER[at + 1 :] if layer in TWIN_FROM_NEXT else ORDER[at:]
    for name in downstream:
        np.testing.assert_allclose(edited[name], twin[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert np.abs(edited["fc2"] - original["fc2"]).max() > 1e-3, "the ablation changed nothing"
    for key, value in model.parameters().items():  # the served model is untouched
        np.testing.assert_array_equal(value, before[key], err_msg=key)


@pytest.mark.parametrize("layer", ["conv1", "pool1", "flatten"])
def test_saliency_of_an_ablated_network_equals_that_of_zeroed_weights(
    model: Sequential, x: np.ndarray, layer: str
) -> None:
    """The backward pass respects the ablation: gradients agree with the by-hand network."""
    channels, zeroed = EQUIVALENT[layer]
    edited = edited_model(model, Edits(ablate=[Ablation(layer, channels)]))
    twin = by_hand(model, zeroed)
    for target in (0, 4):
        mine = gradient_times_input(edited, edited.trace(x), target)
        theirs = gradient_times_input(twin, twin.trace(x), target)
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)
        unedited = gradient_times_input(model, model.trace(x), target)
        assert np.abs(mine - unedited).max() > 1e-3 * np.abs(unedited).max(), "no change"


def test_an_ablated_pool_keeps_its_winners_mask(model: Sequential, x: np.ndarray) -> None:
    edited = edited_model(model, Edits(ablate=[Ablation("pool2", [1, 2])])).trace(x)
    original = model.trace(x)
    for mine, theirs in zip(edited.layers, original.layers, strict=True):
        if theirs.mask is not None:
            assert mine.mask is not None
            np.testing.assert_array_equal(mine.mask, theirs.mask)


def test_repeated_channels_and_entries_count_once(model: Sequential, x: np.ndarray) -> None:
    once = edited_model(model, Edits(ablate=[Ablation("conv2", [1, 9])])).forward(x)
    repeated = edited_model(
        model, Edits(ablate=[Ablation("conv2", [9, 1, 1]), Ablation("conv2", [9])])
    ).forward(x)
    np.testing.assert_array_equal(once, repeated)


def test_edits_leave_the_served_network_as_it_was(model: Sequential, x: np.ndarray) -> None:
    before, layers = outputs(model, x), list(model.layers)
    kernel = np.ones((1, 3, 3))
    edits = Edits(
        ablate=[Ablation("conv1", [0]), Ablation("dropout", [3])],
        kernels=[KernelEdit("conv1", 1, kernel, 2.0), KernelEdit("conv2", 0, np.ones((32, 3, 3)))],
    )
    edited = edited_model(model, edits)
    edited.forward(x)
    assert model.layers == layers
    assert all(a is b for a, b in zip(model.layers, layers, strict=True))
    after = outputs(model, x)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    # layers nobody edited are shared, not copied
    shared = [a is b for a, b in zip(edited.layers, model.layers, strict=True)]
    assert shared == [name not in {"conv1", "conv2", "dropout"} for name in ORDER]


# --- kernel edits ----------------------------------------------------------------------------


def naive_correlation(maps: np.ndarray, kernel: np.ndarray, bias: float) -> np.ndarray:
    """(C, H, W) maps and a [C, 3, 3] kernel -> (H, W), 'same' zero padding, one sum per cell."""
    c, h, w = maps.shape
    padded = np.zeros((c, h + 2, w + 2))
    padded[:, 1:-1, 1:-1] = maps
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            total = bias
            for ch in range(c):
                for i in range(3):
                    for j in range(3):
                        total += padded[ch, y + i, x + j] * kernel[ch, i, j]
            out[y, x] = total
    return out


@pytest.mark.parametrize(
    ("layer", "source", "channel"), [("conv1", None, 3), ("conv2", "pool1", 10)]
)
def test_a_new_kernel_gives_its_naive_correlation(
    model: Sequential, x: np.ndarray, layer: str, source: str | None, channel: int
) -> None:
    in_channels = 1 if layer == "conv1" else 32
    gen = np.random.default_rng(5)
    kernel = gen.normal(0.0, 0.5, (in_channels, 3, 3))  # [C_in, kh, kw]
    edited = outputs(
        edited_model(model, Edits(kernels=[KernelEdit(layer, channel, kernel.tolist(), 0.25)])), x
    )
    original = outputs(model, x)
    maps = (x[0] if source is None else original[source]).transpose(2, 0, 1)  # (C, H, W)
    expected = naive_correlation(maps.astype(np.float64), kernel, 0.25)
    np.testing.assert_allclose(edited[layer][..., channel], expected, rtol=1e-5, atol=1e-5)
    others = np.setdiff1d(np.arange(edited[layer].shape[-1]), [channel])
    np.testing.assert_allclose(edited[layer][..., others], original[layer][..., others], atol=1e-6)


def test_a_kernel_without_bias_keeps_the_filters_bias(model: Sequential, x: np.ndarray) -> None:
    kernel = np.zeros((1, 3, 3))
    kernel[0, 1, 1] = 1.0  # the identity filter: output = input + bias
    edited = outputs(edited_model(model, Edits(kernels=[KernelEdit("conv1", 2, kernel)])), x)
    bias = model.layer("conv1").params["bias"][2]
    np.testing.assert_allclose(edited["conv1"][..., 2], x[0, :, :, 0] + bias, atol=1e-6)


def test_kernel_and_ablation_on_one_filter_give_zero(model: Sequential, x: np.ndarray) -> None:
    edits = Edits(
        ablate=[Ablation("conv1", [2])], kernels=[KernelEdit("conv1", 2, np.ones((1, 3, 3)), 1.0)]
    )
    assert np.all(outputs(edited_model(model, edits), x)["conv1"][..., 2] == 0)


# --- bad edits -------------------------------------------------------------------------------

GOOD_KERNEL = np.zeros((1, 3, 3)).tolist()
BAD = [
    (Edits(ablate=[Ablation("conv9", [1])]), ["conv9", "conv1", "fc2", "layers are"]),
    (Edits(ablate=[Ablation("softmax", [1])]), ["softmax", "layers are"]),
    (Edits(ablate=[Ablation("conv1", [32])]), ["channel 32", "out of range", "32 channels"]),
    (Edits(ablate=[Ablation("conv1", [-1])]), ["channel -1", "out of range"]),
    (Edits(ablate=[Ablation("fc1", [128])]), ["unit 128", "128 units"]),
    (
        Edits(ablate=[Ablation("flatten", range(MAX_ABLATED_PER_LAYER + 1))]),
        ["257 channels", "at most 256"],
    ),
    (
        Edits(ablate=[Ablation("flatten", range(200)), Ablation("flatten", range(100, 300))]),
        ["300 channels", "at most 256"],
    ),
    (Edits(kernels=[KernelEdit("fc1", 0, GOOD_KERNEL)]), ["dense", "conv layers only", "conv1"]),
    (Edits(kernels=[KernelEdit("relu1", 0, GOOD_KERNEL)]), ["relu", "conv layers only"]),
    (Edits(kernels=[KernelEdit("conv7", 0, GOOD_KERNEL)]), ["conv7", "conv1, conv2"]),
    (Edits(kernels=[KernelEdit("conv1", 32, GOOD_KERNEL)]), ["filter 32", "out of range"]),
    (Edits(kernels=[KernelEdit("conv2", 0, GOOD_KERNEL)]), ["[1, 3, 3]", "[32, 3, 3]"]),
    (Edits(kernels=[KernelEdit("conv1", 0, [[[1, 2], [3, 4, 5]]])]), ["rectangular"]),
    (Edits(kernels=[KernelEdit("conv1", 0, [[[0, 0, 0]] * 2 + [[0, np.nan, 0]]])]), ["nan"]),
    (Edits(kernels=[KernelEdit("conv1", 0, [[[0, 0, -np.inf]] * 3])]), ["-inf", "finite"]),
    (Edits(kernels=[KernelEdit("conv1", 0, [[[0, 0, 1e39]] * 3])]), ["1e+39", "1000"]),
    (Edits(kernels=[KernelEdit("conv1", 0, GOOD_KERNEL, float("nan"))]), ["bias", "nan"]),
    (
        Edits(kernels=[KernelEdit("conv1", 4, GOOD_KERNEL), KernelEdit("conv1", 4, GOOD_KERNEL)]),
        ["filter 4", "twice"],
    ),
]


@pytest.mark.parametrize(("edits", "words"), BAD)
def test_bad_edits_are_refused_in_words(model: Sequential, edits: Edits, words: list[str]) -> None:
    with pytest.raises(EditError) as caught:
        edited_model(model, edits)
    for word in words:
        assert word.lower() in str(caught.value).lower(), (word, str(caught.value))


def test_the_bad_value_is_named_by_its_index(model: Sequential) -> None:
    weight = np.zeros((1, 3, 3))
    weight[0, 2, 1] = np.inf
    with pytest.raises(EditError, match=r"edits\.kernels\[1\]\.weight\[0\]\[2\]\[1\] is inf"):
        edited_model(
            model,
            Edits(kernels=[KernelEdit("conv1", 0, GOOD_KERNEL), KernelEdit("conv1", 1, weight)]),
        )


def test_the_largest_allowed_kernel_keeps_every_activation_finite(
    model: Sequential, x: np.ndarray
) -> None:
    """The +-1000 bound is what keeps the network finite: both conv layers at the bound."""
    edits = Edits(
        kernels=[KernelEdit("conv1", c, np.full((1, 3, 3), 1000.0), 1000.0) for c in range(32)]
        + [KernelEdit("conv2", c, np.full((32, 3, 3), 1000.0), 1000.0) for c in range(64)]
    )
    for name, value in outputs(edited_model(model, edits), np.ones_like(x)).items():
        assert np.all(np.isfinite(value)), name
