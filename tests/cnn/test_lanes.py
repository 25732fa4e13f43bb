"""Lanes (server/cnn/lanes.py) against the model alone: a batch cut into slices over threads must
give the model's logits, gradients and running statistics, the same bits for any lane count."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from server.cnn import Sequential, softmax_cross_entropy
from server.cnn.architectures import PRESETS, build_preset
from server.cnn.lanes import SLICE, Lanes

BATCHES = [1, 31, 32, 33, 64, 100]


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """The same bits for any lane count hold at one BLAS thread, which two open lanes set
    themselves and one lane leaves as it finds it (test_the_lane_count_changes_no_bit)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def images(n: int, seed: int = 0) -> np.ndarray:
    """n random images (n, 28, 28, 1) in [0, 1), what every preset reads."""
    return np.random.default_rng(seed).random((n, 28, 28, 1), dtype=np.float32)


def labels(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, n)


def assert_same_gradients(
    got: dict[str, np.ndarray], expected: dict[str, np.ndarray], exact: bool = False
) -> None:
    """The same keys, and the same gradient for each (bit for bit when `exact`)."""
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key].shape == value.shape, key
        if exact:
            assert np.array_equal(got[key], value), key
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-6, err_msg=key)


def buffers(model: Sequential) -> dict[str, np.ndarray]:
    """Copies of the running statistics (what state_dict holds beyond the parameters)."""
    params = model.parameters()
    return {key: value.copy() for key, value in model.state_dict().items() if key not in params}


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_forward_gives_the_models_logits_for_any_batch_size(name: str, n: int) -> None:
    """Slices at, below and either side of SLICE, and several slices: none dropped or doubled."""
    model = build_preset(name, seed=3)
    x = images(n)
    with Lanes(model, 2) as lanes:
        logits = lanes.forward(x)
    assert logits.shape == (n, 10)
    np.testing.assert_allclose(logits, model.forward(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_training_step_gives_the_models_logits_and_gradients(name: str) -> None:
    """Dropout draws once on the whole batch in both, so both see the same random numbers."""
    model = build_preset(name, seed=3)
    x, y = images(70), labels(70)
    with Lanes(model, 2) as lanes:
        logits, caches = lanes.forward_train(x, np.random.default_rng(7))
        expected, model_caches = model.forward_train(x, np.random.default_rng(7))
        np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
        _, grad = softmax_cross_entropy(expected, y)
        grads = lanes.parameter_gradients(grad, caches)
    assert_same_gradients(grads, model.parameter_gradients(grad, model_caches))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_running_statistics_move_as_the_models_do(training: bool) -> None:
    """Batch norm runs once on the whole batch, so its statistics move once, by the same step
    (or, outside training, not at all)."""
    alone, laned = build_preset("tiny", seed=3), build_preset("tiny", seed=3)
    before = buffers(alone)
    with Lanes(laned, 2) as lanes:
        for seed in (1, 2):  # two steps: a second update starts from the first's
            lanes.forward_train(images(70, seed), np.random.default_rng(7), training=training)
            alone.forward_train(images(70, seed), np.random.default_rng(7), training=training)
    after, expected = buffers(laned), buffers(alone)
    assert sorted(after) == sorted(expected) == sorted(before)
    for key, value in expected.items():
        np.testing.assert_allclose(after[key], value, rtol=1e-5, atol=1e-7, err_msg=key)
        assert np.array_equal(value, before[key]) != training, key  # moved only when training


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_an_inference_mode_pass_gives_the_models_logits_and_gradients(name: str) -> None:
    """training=False (counterfactual search): dropout off, batch norm on its running
    statistics, however the batch is sliced."""
    model = build_preset(name, seed=3)
    before = buffers(model)
    x, y = images(70), labels(70)
    with Lanes(model, 2) as lanes:
        logits, caches = lanes.forward_train(x, training=False)
        after_lanes = buffers(model)
        expected, model_caches = model.forward_train(x, training=False)
        np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
        _, grad = softmax_cross_entropy(expected, y)
        grads = lanes.parameter_gradients(grad, caches)
    assert_same_gradients(grads, model.parameter_gradients(grad, model_caches))
    for key, value in before.items():
        assert np.array_equal(after_lanes[key], value), f"{key} moved outside training"


def lane_results(
    name: str, count: int, training: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Inference logits, step logits and step gradients of a fresh preset over `count` lanes."""
    model = build_preset(name, seed=3)
    x, y = images(100), labels(100)
    with Lanes(model, count) as lanes:
        forward = lanes.forward(x)
        logits, caches = lanes.forward_train(x, np.random.default_rng(7), training=training)
        _, grad = softmax_cross_entropy(logits, y)
        return forward, logits, lanes.parameter_gradients(grad, caches)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_lane_count_changes_no_bit(name: str, training: bool) -> None:
    """Slices depend on the batch size alone and their gradients are summed in slice order,
    so one, two or three lanes give the same bits."""
    one = lane_results(name, 1, training)
    for count in (2, 3):
        forward, logits, grads = lane_results(name, count, training)
        assert np.array_equal(forward, one[0]), count
        assert np.array_equal(logits, one[1]), count
        assert_same_gradients(grads, one[2], exact=True)


@pytest.mark.parametrize("n", [*range(1, 200), 1000, 1023, 1024, 1025])
def test_slices_are_contiguous_even_and_at_most_slice_long(n: int) -> None:
    parts = Lanes.slices(n)
    assert parts[0].start == 0
    assert parts[-1].stop == n
    assert all(a.stop == b.start for a, b in itertools.pairwise(parts))
    sizes = [part.stop - part.start for part in parts]
    assert all(0 < size <= SLICE for size in sizes)
    assert max(sizes) - min(sizes) <= 1
    fewest = -(-n // SLICE)
    # as few as SLICE allows, rounded up to an even count (two lanes share them evenly)
    assert len(parts) == (fewest + fewest % 2 if fewest > 1 else 1)
    assert all(part.step is None for part in parts)


def test_slices_of_an_empty_batch_cover_nothing() -> None:
    """Whatever it returns for 0 (today one empty slice) selects no sample."""
    parts = Lanes.slices(0)
    assert sum(len(range(10)[part]) for part in parts) == 0
    assert len(parts) <= 1


def test_map_returns_results_in_argument_order_when_later_slices_finish_first() -> None:
    """The first job waits for all the others, which the other lanes finish first."""
    finished: list[int] = []
    others_done = threading.Event()
    lock = threading.Lock()

    def job(index: int) -> int:
        if index == 0:
            assert others_done.wait(timeout=10)
        with lock:
            finished.append(index)
            if len(finished) == 5:
                others_done.set()
        return index * 10

    with Lanes(build_preset("mlp"), 3) as lanes:
        results = lanes.map(job, range(6))
    assert results == [i * 10 for i in range(6)]
    assert finished[-1] == 0  # the test would prove nothing had they finished in order


def test_an_error_in_a_lane_thread_reaches_the_caller() -> None:
    """The caller's job waits until another lane's job has failed: map must re-raise that
    error, not return a list with a hole in it."""
    caller = threading.current_thread()
    lane_failed = threading.Event()
    raised_in: list[str] = []

    def job(index: int) -> int:
        if threading.current_thread() is caller:
            assert lane_failed.wait(timeout=10)
            return index
        raised_in.append(threading.current_thread().name)
        lane_failed.set()
        raise RuntimeError(f"slice {index} failed")

    with Lanes(build_preset("mlp"), 2) as lanes, pytest.raises(RuntimeError, match="slice"):
        lanes.map(job, range(6))
    assert raised_in == [raised_in[0]]  # one failure, and no lane took a job after it
    assert raised_in[0] != caller.name


def test_an_error_in_a_later_job_reaches_the_caller() -> None:
    def job(index: int) -> int:
        if index == 4:
            raise KeyError("slice 4")
        return index

    with Lanes(build_preset("mlp"), 3) as lanes, pytest.raises(KeyError, match="slice 4"):
        lanes.map(job, range(6))


def test_an_error_on_the_callers_lane_stops_the_others_taking_jobs() -> None:
    """Once a job has raised, no lane takes another (they may write shared state), and map
    raises only when every lane has stopped."""
    caller = threading.current_thread()
    lane_busy, caller_failing = threading.Event(), threading.Event()
    ran: list[int] = []
    done: list[int] = []

    def job(index: int) -> int:
        if threading.current_thread() is caller:
            assert lane_busy.wait(timeout=10)  # the other lane holds a job
            caller_failing.set()
            raise ValueError("the caller's slice failed")
        ran.append(index)
        lane_busy.set()
        assert caller_failing.wait(timeout=10)
        time.sleep(0.2)  # the caller's lane marks the failure meanwhile
        done.append(index)
        return index

    with Lanes(build_preset("mlp"), 2) as lanes:
        with pytest.raises(ValueError, match="caller's slice"):
            lanes.map(job, range(8))
        assert done == ran  # map raised only once the other lane had finished its job
        assert len(ran) == 1  # the job it held when the caller failed, and no other
        assert lanes.map(lambda i: i, range(3)) == [0, 1, 2]  # the lanes still work


def test_closed_lanes_still_compute_on_one_thread() -> None:
    """close is idempotent, and afterwards the same results come from the caller's thread."""
    model = build_preset("default", seed=3)
    x, y = images(70), labels(70)
    lanes = Lanes(model, 3)
    expected = lanes.forward(x)
    lanes.close()
    lanes.close()
    threads: set[str] = set()
    assert lanes.map(lambda i: threads.add(threading.current_thread().name), range(4))
    assert threads == {threading.current_thread().name}
    assert np.array_equal(lanes.forward(x), expected)
    logits, caches = lanes.forward_train(x, np.random.default_rng(7))
    model_logits, model_caches = model.forward_train(x, np.random.default_rng(7))
    np.testing.assert_allclose(logits, model_logits, rtol=1e-5, atol=1e-6)
    _, grad = softmax_cross_entropy(model_logits, y)
    assert_same_gradients(
        lanes.parameter_gradients(grad, caches), model.parameter_gradients(grad, model_caches)
    )


@pytest.mark.parametrize("count", [0, -1])
def test_lanes_need_at_least_one_thread(count: int) -> None:
    with pytest.raises(ValueError, match="lanes"):
        Lanes(build_preset("mlp"), count)


def names(half: Sequential | None) -> list[str]:
    return [] if half is None else [layer.name for layer in half]


@pytest.mark.parametrize(
    ("name", "first_joined"), [("default", "dropout"), ("three-conv", "dropout"), ("tiny", "bn1")]
)
def test_training_splits_right_before_the_first_layer_that_mixes_samples(
    name: str, first_joined: str
) -> None:
    model = build_preset(name)
    everything = [layer.name for layer in model]
    cut = everything.index(first_joined)
    split, joined = Lanes(model, 1).halves(True)
    assert names(split) == everything[:cut]
    assert names(joined) == everything[cut:]
    assert split is not None
    assert joined is not None
    assert split.input_shape == model.input_shape
    assert joined.input_shape == model.output_shapes[cut - 1]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_outside_training_the_whole_model_runs_split(name: str) -> None:
    model = build_preset(name)
    split, joined = Lanes(model, 1).halves(False)
    assert names(split) == [layer.name for layer in model]
    assert joined is None


@pytest.mark.parametrize("name", ["lenet5", "mlp"])
def test_models_that_never_mix_samples_run_split_in_training_too(name: str) -> None:
    model = build_preset(name)
    split, joined = Lanes(model, 1).halves(True)
    assert names(split) == [layer.name for layer in model]
    assert joined is None


@pytest.mark.parametrize("count", [1, 2])
def test_open_lanes_run_blas_on_one_thread_and_give_it_back(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two lanes of two BLAS threads each would fight for two cores; one lane leaves BLAS be.
    The limit's calls are recorded, not BLAS's count: once a test app has set one thread,
    OpenBLAS would not go back up to two (inside an open TestClient, and for the rest of a full
    test run), so a count could not tell lanes that limit from lanes that do not.
    (tests/cli/test_bench.py checks the real count a benchmark with two lanes reports.)"""
    calls: list[object] = []

    class Recorded:
        def __init__(self, limits: int, user_api: str) -> None:
            calls.append((limits, user_api))

        def restore_original_limits(self) -> None:
            calls.append("restored")

    monkeypatch.setattr("server.cnn.lanes.threadpool_limits", Recorded)
    with Lanes(build_preset("mlp"), count):
        assert calls == ([(1, "blas")] if count > 1 else [])
    assert calls == ([(1, "blas"), "restored"] if count > 1 else [])
    lanes = Lanes(build_preset("mlp"), count).__enter__()
    lanes.close()  # as the context's exit does, and only once
    lanes.close()
    assert calls == ([(1, "blas"), "restored"] * 2 if count > 1 else [])
