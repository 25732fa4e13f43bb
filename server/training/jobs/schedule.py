"""When a job evaluates and keeps snapshots: pure functions of the run's length."""

from __future__ import annotations

import numpy as np

SNAPSHOTS = 32
EVALUATIONS_PER_EPOCH = 4


def snapshot_steps(total_steps: int, count: int = SNAPSHOTS) -> list[int]:
    """Up to `count` distinct steps from 1 to `total_steps`, log-spaced: dense early, where the
    network's reading changes most, and always including the last step."""
    if total_steps <= count:
        return list(range(1, total_steps + 1))
    steps: list[int] = []
    for position in np.geomspace(1, total_steps, count):
        steps.append(max(round(float(position)), steps[-1] + 1 if steps else 1))
    # the nudges above may push the tail past the end; pull it back, keeping the steps distinct
    for i in range(count - 1, -1, -1):
        steps[i] = min(steps[i], total_steps - (count - 1 - i))
    return steps


def evaluation_steps(
    steps_per_epoch: int, epochs: int, per_epoch: int = EVALUATIONS_PER_EPOCH
) -> list[int]:
    """`per_epoch` evenly spaced steps in each epoch, the last at the epoch's end."""
    steps = {
        epoch * steps_per_epoch + max(1, round(k * steps_per_epoch / per_epoch))
        for epoch in range(epochs)
        for k in range(1, per_epoch + 1)
    }
    return sorted(steps)
