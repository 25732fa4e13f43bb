"""The app under `convscope serve` on a free loopback port, for tools and tests (load test,
browser, slow clients)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.config import ROOT

POLL_SECONDS = 0.1


class ServerStartError(RuntimeError):
    """uvicorn exited or never answered /healthz; the message carries its log."""


@dataclass(frozen=True)
class LocalServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path  # uvicorn's output

    def log_tail(self, limit: int = 3000) -> str:
        return log_tail(str(self.log), limit)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(url: str, process: subprocess.Popen[bytes], log: str, timeout: float) -> None:
    """Poll /healthz until it answers 200; ServerStartError if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"uvicorn exited with {process.returncode}:\n{log_tail(log)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_SECONDS)
    raise ServerStartError(f"no answer from {url}/healthz in {timeout:.0f} s:\n{log_tail(log)}")


def log_tail(path: str, limit: int = 3000) -> str:
    return Path(path).read_text(errors="replace")[-limit:]


@contextmanager
def local_server(
    weights: Path | None = None,
    *,
    workers: int = 1,
    startup_timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    log_level: str = "warning",
) -> Iterator[LocalServer]:
    """Start `convscope serve` (uvicorn with the app's protocol, timeouts and logging) on a free
    loopback port, with `env` (CONVSCOPE_* settings) on top of ours; stop it on the way out."""
    port = free_port()
    child_env = {**os.environ, **(env or {})}
    if weights is not None:
        child_env["CONVSCOPE_WEIGHTS"] = str(Path(weights).resolve())
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), child_env.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "server.cli.convscope", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", log_level]
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix="uvicorn-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=log)
        try:
            wait_for_health(url, process, log.name, startup_timeout)
            yield LocalServer(url, process, Path(log.name))
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
