#!/usr/bin/env python3
"""CPU time per request of GET /healthz and POST /api/v1/predict, through the whole app, no HTTP.

Drives the ASGI app in this process (lifespan, every middleware, FastAPI, the compute process or
threads) with --concurrency clients at once on uvloop, as uvicorn would, and prints the CPU ms
per request (user and system, all threads; the compute process's apart) for each route, in
interleaved rounds. Without sockets
and wrk it shows what the app itself costs; scripts/wrk-bench.sh measures the server whole.
The predict body is the pad's digit (scripts/pad_digit.py) with activations.

    python scripts/asgi_cpu.py --rounds 3 --requests 400
    py-spy record -o app.svg -- python scripts/asgi_cpu.py --only predict --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pad_digit beside this file

from pad_digit import predict_body

from server.api.main import create_default_app

ACCEPT = b"gzip, deflate, br, zstd"  # a browser's, as wrk-bench sends it
Asgi = Any  # the app: FastAPI, called as an ASGI callable


def http_scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1"), (b"accept-encoding", ACCEPT)]
    if body:
        headers += [(b"content-type", b"application/json")]
        headers += [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def request(app: Asgi, method: str, path: str, body: bytes) -> int:
    """One request through the app; the answer's size in bytes (as sent, maybe compressed)."""
    delivered = False
    status: list[int] = []
    size = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal size
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    await app(http_scope(method, path, body), receive, send)
    if status != [200]:
        raise SystemExit(f"{method} {path} answered {status}")
    return size


def compute_process_seconds(app: Asgi) -> float:
    """CPU seconds the app's compute process has used so far (0 without one); Linux /proc."""
    process = app.state.compute.process
    if process is None or process.child is None:
        return 0.0
    fields = Path(f"/proc/{process.child.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def cpu_per_request(
    app: Asgi, method: str, path: str, body: bytes, requests: int, concurrency: int
) -> tuple[float, float, float, float, float]:
    """(user ms, system ms, compute process ms, page faults, req/s) per request over `requests`
    sent by `concurrency` clients. Page faults (fresh memory the kernel maps) cost system time."""

    async def client(count: int) -> None:
        for _ in range(count):
            await request(app, method, path, body)

    share = max(1, requests // concurrency)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    child_before = compute_process_seconds(app)
    await asyncio.gather(*(client(share) for _ in range(concurrency)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - start
    done = share * concurrency
    return (
        1000 * (after.ru_utime - before.ru_utime) / done,
        1000 * (after.ru_stime - before.ru_stime) / done,
        1000 * (compute_process_seconds(app) - child_before) / done,
        (after.ru_minflt - before.ru_minflt) / done,
        done / wall,
    )


async def run(args: argparse.Namespace) -> None:
    app = create_default_app()
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, startup.get, replies.put)
    )
    started = await replies.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"start-up failed: {started}")
    body = json.dumps(predict_body(args.encoding)).encode()
    routes = {"healthz": ("GET", "/healthz", b""), "predict": ("POST", "/api/v1/predict", body)}
    names = [args.only] if args.only else list(routes)
    size = await request(app, *routes["predict"])
    print(f"predict answer: {size} B with Accept-Encoding: {ACCEPT.decode()}")
    for name in names:  # warm-up: first calls build caches, the thread pool, numpy buffers
        await cpu_per_request(app, *routes[name], 50, args.concurrency)
    for round_ in range(1, args.rounds + 1):
        for name in names:
            user, system, child, faults, rate = await cpu_per_request(
                app, *routes[name], args.requests, args.concurrency
            )
            print(
                f"round {round_}  {name:8} CPU {user + system:.3f} ms/request "
                f"(user {user:.3f}, system {system:.3f}, {faults:.0f} page faults) "
                f"+ compute process {child:.3f}  {rate:.0f} req/s"
            )
    await startup.put({"type": "lifespan.shutdown"})
    await lifespan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="per route and round")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk-bench's connections")
    parser.add_argument("--only", choices=["healthz", "predict"])
    parser.add_argument("--encoding", default="uint8", choices=["list", "base64", "uint8"])
    uvloop.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
