"""How many CPUs this process may keep busy: what training's lanes and the server's compute
threads and compute process are sized by."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may use: its CPU affinity (taskset, a cpuset), capped by a
    container's CPU quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), which affinity does not
    show: a pod limited to 2 CPUs on a 64-core node sees 64."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cpu_quota(cgroup)
    return max(1, min(cores or 1, math.ceil(quota) if quota else cores or 1))


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """CPUs' worth of time a period the cgroup may use, or None when it is not limited."""
    try:
        if (cgroup / "cpu.max").exists():
            limit, period = (cgroup / "cpu.max").read_text().split()[:2]
            return None if limit == "max" else int(limit) / int(period)
        limit = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if int(limit) <= 0 else int(limit) / int(period)
    except (OSError, ValueError):
        return None
