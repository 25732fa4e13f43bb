"""Soak: the real server (uvicorn in a subprocess on 127.0.0.1) under 64 concurrent clients
asking for activations and saliency in base64, for CONVSCOPE_SOAK_SECONDS (default 30).
No request may fail, and the server's memory must not keep growing: after the warm-up it may
settle (each of the thread pool's threads warms its own allocator arena, more of them the faster
requests go), but the second half of the soak must not add what the first half did."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from server.cli.local_server import LocalServer, local_server

CLIENTS = 64
WARMUP_PER_CLIENT = 8  # requests per client before the baseline: RSS levels off by ~500
WARMUP_TIMEOUT_S = 120.0
SOAK_SECONDS = float(os.environ.get("CONVSCOPE_SOAK_SECONDS", "30"))
MAX_REQUESTS = 200_000  # per phase, a bound beside the clock
REQUEST_TIMEOUT_S = 60.0
# Under uvicorn's 5 s keep-alive, so the client never reuses a connection the server is closing.
CLIENT_KEEPALIVE_S = 2.0
MAX_GROWTH_BYTES = 64 * 1024 * 1024  # RSS after the soak vs after the warm-up
MAX_LATE_GROWTH_FRACTION = 0.08  # RSS after the second half vs after the first half


def rss(pid: int) -> int:
    """Resident memory of the server process and any children it started."""
    process = psutil.Process(pid)
    return process.memory_info().rss + sum(
        child.memory_info().rss for child in process.children(recursive=True)
    )


@dataclass
class Tally:
    requests: int = 0
    errors: list[str] = field(default_factory=list)


async def hammer(
    url: str, bodies: list[dict[str, Any]], seconds: float, per_client: int = MAX_REQUESTS
) -> Tally:
    """CLIENTS concurrent loops posting predict until the clock, `per_client` or MAX_REQUESTS
    runs out."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(
        max_connections=CLIENTS,
        max_keepalive_connections=CLIENTS,
        keepalive_expiry=CLIENT_KEEPALIVE_S,
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

        async def one_client(index: int) -> None:
            turn = index
            for _ in range(per_client):
                if time.monotonic() >= deadline or tally.requests >= MAX_REQUESTS:
                    break
                body = bodies[turn % len(bodies)]
                turn += 1
                tally.requests += 1
                try:
                    response = await client.post("/api/v1/predict", json=body)
                except httpx.HTTPError as error:
                    tally.errors.append(f"{type(error).__name__}: {error!r}")
                    continue
                if response.status_code != 200:
                    tally.errors.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                answer = response.json()
                if len(answer.get("layers", [])) != 12 or "saliency" not in answer:
                    tally.errors.append(f"incomplete answer: {sorted(answer)}")

        await asyncio.gather(*(one_client(i) for i in range(CLIENTS)))
    return tally


@pytest.fixture
def server(weights_path: Path) -> Iterator[LocalServer]:
    """`uvicorn --factory server.api.main:create_default_app`, one worker, stopped afterwards."""
    with local_server(weights_path) as running:
        yield running


def test_sixty_four_clients_without_errors_or_memory_growth(
    server: LocalServer, kit: Any, record_property: Any
) -> None:
    bodies = [
        {
            "image": kit.png_b64(kit.draw_digit(k, size=140 + 12 * k)),
            "activations": True,
            "saliency": True,
            "encoding": "base64",
        }
        for k in range(10)
    ]
    warmup = asyncio.run(hammer(server.url, bodies, WARMUP_TIMEOUT_S, WARMUP_PER_CLIENT))
    assert not warmup.errors, warmup.errors[:5]
    assert warmup.requests == CLIENTS * WARMUP_PER_CLIENT, "the warm-up ran out of time"
    warm_rss = rss(server.process.pid)

    first = asyncio.run(hammer(server.url, bodies, SOAK_SECONDS / 2))
    middle_rss = rss(server.process.pid)
    second = asyncio.run(hammer(server.url, bodies, SOAK_SECONDS / 2))
    final_rss = rss(server.process.pid)
    soak = Tally(first.requests + second.requests, first.errors + second.errors)
    growth, late_growth = final_rss - warm_rss, final_rss - middle_rss
    summary = (
        f"{soak.requests} requests in {SOAK_SECONDS:.0f} s with {CLIENTS} clients "
        f"({soak.requests / SOAK_SECONDS:.1f}/s), {len(soak.errors)} errors; "
        f"server RSS {warm_rss / 2**20:.1f} MiB after warm-up, {middle_rss / 2**20:.1f} MiB "
        f"half-way, {final_rss / 2**20:.1f} MiB after (growth {growth / 2**20:+.1f} MiB, "
        f"{late_growth / 2**20:+.1f} MiB in the second half)"
    )
    print(f"\n{summary}")
    record_property("soak_summary", summary)
    assert server.process.poll() is None, f"the server died:\n{server.log_tail()}"
    assert soak.requests > 0
    assert not soak.errors, (
        f"{summary}; first errors: {soak.errors[:5]}; server log:\n{server.log_tail()}"
    )
    assert growth <= MAX_GROWTH_BYTES, summary
    assert late_growth <= MAX_LATE_GROWTH_FRACTION * middle_rss, summary
