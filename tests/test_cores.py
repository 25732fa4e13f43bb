"""server/cores.py: the CPUs a process may keep busy, from its affinity and a container's CPU
quota, as training's lanes and the server's compute defaults count them (the defaults
themselves: tests/api/test_settings.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.cores import available_cores


def affinity() -> int:
    return len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),  # cgroup v2, no limit
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: two lanes, each busy part of the time
        ({"cpu.max": "100000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({}, None),  # no cgroup files at all (macOS, a bare chroot)
        ({"cpu.max": "garbled\n"}, None),
    ],
)
def test_available_cores_follow_a_containers_cpu_quota(
    tmp_path: Path, files: dict[str, str], expected: int | None
) -> None:
    """A pod limited to 2 CPUs on a big node sees every core in its affinity: the quota caps."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cores = available_cores(tmp_path)
    assert cores == (affinity() if expected is None else min(expected, affinity()))
