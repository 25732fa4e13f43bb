"""Ending a child process: politely first, then by force."""

from __future__ import annotations

from multiprocessing.process import BaseProcess

TERMINATE_WAIT_S = 0.3  # after SIGTERM, before SIGKILL


def end(process: BaseProcess, grace_s: float) -> int | None:
    """Wait up to `grace_s` for the process to exit, then terminate it, then kill it; returns
    once it is gone, with its exit code (None if it never started)."""
    if process.pid is None:
        return None
    process.join(grace_s)
    if process.is_alive():
        process.terminate()
        process.join(TERMINATE_WAIT_S)
    if process.is_alive():
        process.kill()
        process.join()
    return process.exitcode
