"""Training over lanes (server/cnn/lanes.py): a run's steps give the same weights, bit for bit,
whether one thread or two share each step, and the weights the model alone would train."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from server.cnn import Sequential
from server.training.train import Run, StepResult, TrainConfig

IMAGES = 150  # steps of 64, 64 and 22: two slices, two slices, then one
ARCHS = ["tiny", "lenet5", "default"]  # batch norm, nothing that mixes samples, dropout

State = dict[str, np.ndarray]


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """The same bits for any lane count hold at one BLAS thread: two lanes set it themselves,
    one lane leaves BLAS as it is (its own threads may split a product's sums otherwise)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class Alone:
    """Stands in for a run's lanes: the steps call the model itself, as before lanes."""

    def __init__(self, model: Sequential) -> None:
        self.model = model
        self.forward_train = model.forward_train
        self.parameter_gradients = model.parameter_gradients


def run_epoch(arch: str, lanes: int, alone: bool = False) -> tuple[State, list[StepResult], State]:
    """One epoch of a fresh run over random images: the weights and buffers after it, its
    steps, and the parameters it started from. `alone`: the steps call the model itself."""
    gen = np.random.default_rng(5)
    images = gen.integers(0, 256, (IMAGES, 28, 28), dtype=np.uint8)
    labels = gen.integers(0, 10, IMAGES).astype(np.uint8)
    config = TrainConfig(arch=arch, batch_size=64, epochs=1, augment=False, seed=2)
    run = Run.start(config, IMAGES, lanes)
    start = {key: value.copy() for key, value in run.model.parameters().items()}
    with run.lanes:
        if alone:
            run.lanes = Alone(run.model)  # type: ignore[assignment]
        steps = list(run.epoch_steps(1, images, labels, np.random.default_rng(9)))
    assert [step.images for step in steps] == [64, 64, 22]
    return {key: value.copy() for key, value in run.model.state_dict().items()}, steps, start


@pytest.mark.parametrize("arch", ARCHS)
def test_two_lanes_train_the_same_weights_as_one(arch: str) -> None:
    """tiny's batch norm and the default's dropout run on the whole batch, the rest on slices
    fixed by the batch size, summed in the same order for any lane count."""
    one, one_steps, start = run_epoch(arch, 1)
    two, two_steps, _ = run_epoch(arch, 2)
    assert [(s.loss, s.correct) for s in two_steps] == [(s.loss, s.correct) for s in one_steps]
    assert sorted(two) == sorted(one)
    for key, value in one.items():
        assert np.array_equal(two[key], value), key
    unmoved = [key for key, value in start.items() if np.array_equal(one[key], value)]
    assert not unmoved  # every parameter trained, so each comparison above saw a change


@pytest.mark.parametrize("arch", ARCHS)
def test_lanes_train_the_weights_the_model_alone_would(arch: str) -> None:
    """Not bit for bit (slices' gradients are summed in another order), but within rounding:
    a dropped slice or a gradient counted twice would be far off."""
    laned, laned_steps, _ = run_epoch(arch, 2)
    alone, alone_steps, _ = run_epoch(arch, 1, alone=True)
    np.testing.assert_allclose(
        [s.loss for s in laned_steps], [s.loss for s in alone_steps], rtol=1e-5
    )
    assert sorted(laned) == sorted(alone)
    for key, value in alone.items():
        np.testing.assert_allclose(laned[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
