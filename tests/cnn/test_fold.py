"""Folding batch norm into its convolution: the same outputs as the network it came from, the
default network's layers, and everything without a batch norm left alone."""

from __future__ import annotations

import numpy as np
import pytest

from server.cnn.architectures import build_preset
from server.cnn.fold import fold_batchnorm


def trained_statistics(name: str, seed: int) -> dict[str, np.ndarray]:
    """Batch-norm parameters and running statistics far from their initial 1s and 0s."""
    model = build_preset(name, seed=seed)
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("bn"):
            low = 0.2 if key.endswith(("gamma", "running_var")) else -1.0
            state[key] = rng.uniform(low, 2.0, value.shape).astype(np.float32)
        else:
            state[key] = value
    return state


@pytest.mark.parametrize("name", ["default-bn", "tiny"])  # tiny: no bias, stride 2
def test_folded_network_reads_every_input_as_the_batch_norm_one_does(name: str) -> None:
    model = build_preset(name, seed=1)
    model.load_state_dict(trained_statistics(name, 1))
    plain = fold_batchnorm(model)
    x = np.random.default_rng(2).random((16, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(plain.forward(x), model.forward(x), rtol=1e-4, atol=1e-4)
    folded_trace, trace = plain.trace(x[:1]), model.trace(x[:1])
    outputs = {t.name: t.output for t in trace.layers}
    for layer in folded_trace.layers:
        if layer.name.startswith("conv"):  # a folded conv gives what its batch norm gave
            expected = outputs[layer.name.replace("conv", "bn")]
        else:
            expected = outputs[layer.name]
        np.testing.assert_allclose(layer.output, expected, rtol=1e-4, atol=1e-4)


def test_folded_network_is_the_default_networks_shape() -> None:
    plain = fold_batchnorm(build_preset("default-bn", seed=0))
    default = build_preset("default", seed=0)
    assert plain.spec() == default.spec()
    assert plain.parameter_count() == default.parameter_count()


def test_a_network_without_batch_norm_comes_back_equal_and_apart() -> None:
    model = build_preset("default", seed=3)
    plain = fold_batchnorm(model)
    assert plain.spec() == model.spec()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(plain.state_dict()[key], value)
        assert plain.state_dict()[key] is not value
