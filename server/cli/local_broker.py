"""A real redis-server and `convscope worker`s on loopback, started and stopped by PID, for tools
and tests of the shared-broker mode (the benchmark, the contract and fault tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from server.cli.local_server import free_port, log_tail
from server.config import ROOT

POLL_SECONDS = 0.05


class BrokerStartError(RuntimeError):
    """redis-server is not installed, exited, or never answered; the message says which."""


@dataclass
class LocalRedis:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it lingers."""
        stop_process(self.process)

    def peak_memory_bytes(self) -> int:
        return int(info(self.port, "memory")["used_memory_peak"])


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


def ping(port: int, timeout: float = 0.5) -> bool:
    """A PING in RESP over a socket: no client library needed to know it is up."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def info(port: int, section: str) -> dict[str, str]:
    """INFO <section> as a dict, read as RESP's bulk string (no client library needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(f"*2\r\n$4\r\nINFO\r\n${len(section)}\r\n{section}\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            data += conn.recv(65536)
        header, _, body = data.partition(b"\r\n")
        size = int(header[1:])  # b"$<size>"
        while len(body) < size:
            body += conn.recv(65536)
    lines = body[:size].decode().split("\r\n")
    return dict(line.split(":", 1) for line in lines if ":" in line)


@contextmanager
def local_redis(port: int | None = None, startup_timeout: float = 10.0) -> Iterator[LocalRedis]:
    """redis-server (or valkey-server) on loopback with no persistence, stopped by PID."""
    binary = redis_server_path()
    if binary is None:
        raise BrokerStartError("no redis-server on PATH (Debian: apt-get install redis-server)")
    port = port or free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + startup_timeout
        while not ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                error = process.stderr.read().decode() if process.stderr else ""
                raise BrokerStartError(f"redis-server did not start on port {port}: {error}")
            time.sleep(POLL_SECONDS)
        yield LocalRedis(f"redis://127.0.0.1:{port}/0", port, process)
    finally:
        stop_process(process)
        if process.stderr is not None:
            process.stderr.close()


@dataclass
class LocalWorker:
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, limit: int = 3000) -> str:
        return log_tail(str(self.log), limit)


@contextmanager
def local_worker(
    broker_url: str, mnist_dir: str | Path, *, slots: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[LocalWorker]:
    """`convscope worker` on the broker, stopped by PID on the way out (SIGTERM, then SIGKILL)."""
    child_env = {**os.environ, **(env or {}), "CONVSCOPE_BROKER_URL": broker_url}
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), child_env.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "server.cli.convscope", "worker", "--slots", str(slots)]
    command += ["--data-dir", str(mnist_dir)]
    with tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=log)
    try:
        yield LocalWorker(process, Path(log.name))
    finally:
        stop_process(process)
        Path(log.name).unlink(missing_ok=True)


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)
