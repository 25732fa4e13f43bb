"""A training process keeps the memory it frees for its next step instead of handing it back.

Each step allocates and frees the same large arrays (a conv's columns, its outputs and their
gradients). glibc's malloc gives large freed blocks back to the kernel (munmap, or trimming the
top of the heap once more than twice the largest block is free there), so the next step takes
every page again as a fresh, zeroed page fault: a quarter of a default training step's CPU time
went to the kernel (docs/speed.md, "Memory"). Raising malloc's thresholds keeps those blocks in
the process; its resident memory then stays at the peak of a step, which it reached anyway.

Only for processes that train (convscope train, a job's process, the benchmark's training
figure): the server's processes keep malloc's defaults.
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20  # blocks below this come from the heap and are reused
TRIM_THRESHOLD = 512 << 20  # the heap gives memory back only beyond this much free at its top


@functools.cache
def keep_freed_memory() -> bool:
    """Set malloc's thresholds for a training process, once; False where there is no glibc
    mallopt (macOS, musl), which changes nothing but speed."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
