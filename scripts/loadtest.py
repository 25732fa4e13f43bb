#!/usr/bin/env python3
"""Load test a running ConvScope server on this machine; prints one JSON report.

For latency percentiles and correctness under load (every answer must be a 200). Its Python
client competes with the server for this machine's cores, so its requests/s are lower than the
server can do: scripts/wrk-bench.sh is the throughput measure.

Measures requests/s, errors and p50/p95 latency of `GET /healthz` and of `POST /api/v1/predict`
with activations (and, with --saliency, saliency) as base64 arrays for a real digit PNG, at N
concurrent clients; the predict response's size raw and gzip-encoded; and the predict/healthz
throughput ratio.

    python scripts/loadtest.py --url http://127.0.0.1:8000 --clients 16 --seconds 10
    python scripts/loadtest.py --start-server --weights model_weights/mnist_cnn.npz

Only loopback targets (127.0.0.0/8, ::1, localhost) are accepted. Each phase stops after
--seconds or --max-requests, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import ipaddress
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.cli.local_server import ServerStartError, local_server

REQUEST_TIMEOUT_S = 30.0


def loopback_only(url: str) -> str:
    """The URL, if its host is this machine; otherwise SystemExit."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise SystemExit(f"loadtest: {url!r} is not an http(s) URL")
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise SystemExit(f"loadtest: refusing {host}: only loopback addresses are allowed")
        except ValueError:
            raise SystemExit(
                f"loadtest: refusing {host!r}: use 127.0.0.1, ::1 or localhost"
            ) from None
    return url.rstrip("/")


def digit_png() -> bytes:
    """A handwritten-looking 3: a 280x280 PNG, dark ink on white, drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (280, 280), 255)
    font = ImageFont.load_default(size=196)
    ImageDraw.Draw(img).text((140, 140), "3", fill=0, font=font, anchor="mm")
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        done = len(self.latencies_ms)
        ordered = sorted(self.latencies_ms)

        def percentile(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(done - 1, int(p / 100 * done))], 2)

        return {
            "requests": done + len(self.errors),
            "ok": done,
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "seconds": round(self.seconds, 2),
            "requests_per_s": round(done / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": percentile(50),
            "p95_ms": percentile(95),
            "mean_ms": round(statistics.fmean(ordered), 2) if ordered else None,
        }


async def run_phase(
    url: str,
    name: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    clients: int,
    seconds: float,
    max_requests: int,
) -> Phase:
    """`clients` concurrent loops sending one request after another until time or count ends."""
    phase = Phase(name)
    # keep-alive under uvicorn's 5 s, so no request goes out on a connection being closed
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0
    )
    sent = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        deadline = time.monotonic() + seconds

        async def one_client() -> None:
            nonlocal sent
            while time.monotonic() < deadline and sent < max_requests:
                sent += 1
                start = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    await response.aread()
                except httpx.HTTPError as error:
                    phase.errors.append(f"{type(error).__name__}: {error}")
                    continue
                if response.status_code != 200:
                    phase.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                phase.latencies_ms.append((time.perf_counter() - start) * 1000)

        started = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        phase.seconds = time.monotonic() - started
    return phase


def response_sizes(url: str, body: dict[str, Any]) -> dict[str, int]:
    """Bytes on the wire for one predict answer, uncompressed and gzip-encoded."""
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        raw = client.post("/api/v1/predict", json=body, headers={"Accept-Encoding": "identity"})
        zipped = client.post("/api/v1/predict", json=body, headers={"Accept-Encoding": "gzip"})
    raw.raise_for_status()
    zipped.raise_for_status()
    return {
        "raw": raw.num_bytes_downloaded,
        "gzip": zipped.num_bytes_downloaded,
        "gzip_encoded": int(zipped.headers.get("content-encoding") == "gzip"),
    }


def measure(
    url: str, clients: int, seconds: float, max_requests: int, saliency: bool
) -> dict[str, Any]:
    body = {
        "image": base64.b64encode(digit_png()).decode("ascii"),
        "activations": True,
        "saliency": saliency,
        "encoding": "base64",
    }
    sizes = response_sizes(url, body)
    health = asyncio.run(
        run_phase(url, "healthz", "GET", "/healthz", None, clients, seconds, max_requests)
    )
    predict = asyncio.run(
        run_phase(url, "predict", "POST", "/api/v1/predict", body, clients, seconds, max_requests)
    )
    health_report, predict_report = health.report(), predict.report()
    ratio = (
        round(predict_report["requests_per_s"] / health_report["requests_per_s"], 4)
        if health_report["requests_per_s"]
        else None
    )
    return {
        "url": url,
        "clients": clients,
        "seconds_per_phase": seconds,
        "max_requests_per_phase": max_requests,
        "healthz": health_report,
        "predict": {
            **predict_report,
            "options": "activations" + ("+saliency" if saliency else "") + ", base64",
            "response_bytes_raw": sizes["raw"],
            "response_bytes_gzip": sizes["gzip"],
        },
        "predict_to_healthz_ratio": ratio,
        "errors": health_report["errors"] + predict_report["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a loopback server URL")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument(
        "--max-requests", type=int, default=100_000, help="request cap of each phase"
    )
    parser.add_argument(
        "--start-server",
        action="store_true",
        help="start uvicorn (one worker) on a free 127.0.0.1 port and stop it at the end",
    )
    parser.add_argument(
        "--weights", type=Path, default=None, help="weights for --start-server (default: settings)"
    )
    parser.add_argument(
        "--saliency", action="store_true", help="ask for saliency too (one backward pass more)"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--clients, --seconds and --max-requests must be positive")
    if args.seconds > 600:
        parser.error("--seconds is capped at 600")
    if args.start_server:
        try:
            with local_server(args.weights) as server:
                report = measure(
                    server.url, args.clients, args.seconds, args.max_requests, args.saliency
                )
        except ServerStartError as error:
            raise SystemExit(f"loadtest: {error}") from None
    else:
        url = loopback_only(args.url)
        try:
            report = measure(url, args.clients, args.seconds, args.max_requests, args.saliency)
        except httpx.TransportError as error:
            raise SystemExit(f"loadtest: cannot reach {url}: {error}") from None
    print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
