"""When a job evaluates and keeps snapshots, against the rules written out step by step."""

from __future__ import annotations

import numpy as np
import pytest

from server.training.jobs.request import JobConfig
from server.training.jobs.schedule import evaluation_steps, snapshot_steps


@pytest.mark.parametrize("total", [1, 5, 32, 33, 40, 100, 922, 4610])
def test_snapshots_are_distinct_log_spaced_and_cover_the_run(total: int) -> None:
    steps = snapshot_steps(total)
    assert steps == sorted(set(steps)), "distinct and in order"
    assert len(steps) == min(32, total)
    assert steps[0] == 1
    assert steps[-1] == total
    if total >= 900:
        # log-spaced: half of them within the first sqrt(total) steps, where reading changes most
        assert sum(s <= np.sqrt(total) for s in steps) >= 14
        gaps = np.diff(steps)
        assert (gaps[1:] >= gaps[:-1] - 1).all(), "gaps only widen (up to rounding)"


@pytest.mark.parametrize(("per_epoch", "epochs"), [(16, 1), (922, 1), (157, 3), (3, 2)])
def test_at_least_four_evaluations_an_epoch_the_last_at_its_end(
    per_epoch: int, epochs: int
) -> None:
    steps = evaluation_steps(per_epoch, epochs)
    for epoch in range(epochs):
        inside = [s for s in steps if epoch * per_epoch < s <= (epoch + 1) * per_epoch]
        assert len(inside) >= min(4, per_epoch)
        assert inside[-1] == (epoch + 1) * per_epoch


def test_job_settings_map_onto_convscope_train() -> None:
    config = JobConfig(train_size=60_000, epochs=2, batch_size=100, learning_rate=0.01, seed=4)
    train = config.train_config()
    assert (train.limit, train.validation) == (59_000, 1000)  # 1,000 held out to evaluate
    assert (train.epochs, train.batch_size, train.lr, train.seed) == (2, 100, 0.01, 4)
    assert config.steps_total() == 2 * 590
    assert JobConfig(train_size=1000, batch_size=64).steps_total() == 16
