"""Time ConvScope's middleware against the maintained packages that could replace it.

Each middleware wraps an app that answers one fixed body; the script calls the pair directly
(no sockets), many times, and prints microseconds per request (median of rounds, after a
warm-up). Every compressed answer is decoded and checked against the body first.

  python scripts/middleware_bench.py                  # the predict body of the shipped model
  python scripts/middleware_bench.py --rounds 7 --requests 200 --json

Needs the optional packages it compares with: pip install starlette-compress secure
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.api.middleware.compression import Compression  # noqa: E402
from server.api.middleware.request_id import request_id_middleware  # noqa: E402
from server.api.middleware.security import SECURITY_HEADERS, SecurityHeaders  # noqa: E402

ASGI = Callable[..., Any]


def predict_body(weights: Path) -> bytes:
    """A full answer for a typed 8: activations, masks and saliency, base64-encoded."""
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image, ImageDraw, ImageFont

    from server.api.app import create_app
    from server.config import Settings

    image = Image.new("L", (280, 280), 255)
    font = ImageFont.load_default(size=196)
    ImageDraw.Draw(image).text((140, 140), "8", fill=0, font=font, anchor="mm")
    png = io.BytesIO()
    image.save(png, "PNG")
    body = {
        "image": base64.b64encode(png.getvalue()).decode(),
        "activations": True,
        "saliency": True,
        "encoding": "base64",
    }
    with TestClient(create_app(Settings(weights=weights))) as client:
        response = client.post("/api/v1/predict", json=body, headers={"accept-encoding": ""})
        response.raise_for_status()
        return response.content


def fixed_app(body: bytes) -> ASGI:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def call(app: ASGI, accept: str) -> tuple[dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/predict",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"accept-encoding", accept.encode())] if accept else [],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
    return headers, b"".join(m.get("body", b"") for m in sent[1:])


def decode(headers: dict[str, str], wire: bytes) -> bytes:
    coding = headers.get("content-encoding", "identity")
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(wire)
    if coding == "gzip":
        return gzip.decompress(wire)
    assert coding == "identity", coding
    return wire


async def time_one(app: ASGI, accept: str, requests: int, rounds: int) -> dict[str, float]:
    for _ in range(max(3, requests // 10)):  # warm-up
        await call(app, accept)
    per_request = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(requests):
            await call(app, accept)
        per_request.append((time.perf_counter() - start) / requests * 1e6)
    return {"median_us": statistics.median(per_request), "min_us": min(per_request)}


def compression_cases(body: bytes, level: int) -> dict[str, tuple[ASGI, str]]:
    from starlette_compress import CompressMiddleware

    app = fixed_app(body)
    ours = Compression(app, minimum_size=1024, gzip_level=level, zstd_level=level)
    theirs = CompressMiddleware(
        app, minimum_size=1024, zstd_level=level, gzip_level=level, brotli=False
    )
    return {
        "zstd  ours (Compression)": (ours, "gzip, deflate, br, zstd"),
        "zstd  starlette-compress": (theirs, "gzip, deflate, br, zstd"),
        "gzip  ours (Starlette GZipMiddleware)": (ours, "gzip"),
        "gzip  starlette-compress": (theirs, "gzip"),
    }


def header_cases(body: bytes) -> dict[str, tuple[ASGI, str]]:
    import secure
    from secure.middleware.asgi import SecureASGIMiddleware

    app = fixed_app(body)
    configured = secure.Secure(
        csp=secure.ContentSecurityPolicy().set(SECURITY_HEADERS["content-security-policy"]),
        xcto=secure.XContentTypeOptions(),
        referrer=secure.ReferrerPolicy().set(SECURITY_HEADERS["referrer-policy"]),
        permissions=secure.PermissionsPolicy().set(SECURITY_HEADERS["permissions-policy"]),
        xfo=secure.XFrameOptions().set(SECURITY_HEADERS["x-frame-options"]),
        coop=secure.CrossOriginOpenerPolicy().set(SECURITY_HEADERS["cross-origin-opener-policy"]),
    )
    return {
        "no middleware": (app, ""),
        "headers ours (SecurityHeaders)": (SecurityHeaders(app), ""),
        "headers secure (SecureASGIMiddleware)": (
            SecureASGIMiddleware(app, secure=configured),
            "",
        ),
        "request id asgi-correlation-id": (request_id_middleware(app), ""),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    body = predict_body(args.weights)
    results: dict[str, Any] = {"body_bytes": len(body), "level": args.level, "cases": {}}
    cases = {**compression_cases(body, args.level), **header_cases(b'{"status":"ok"}')}
    for name, (app, accept) in cases.items():
        headers, wire = await call(app, accept)
        sent_body = body if "  " in name else b'{"status":"ok"}'
        assert decode(headers, wire) == sent_body, f"{name}: the answer does not decode to the body"
        timing = await time_one(app, accept, args.requests, args.rounds)
        results["cases"][name] = {**timing, "wire_bytes": len(wire), "headers": len(headers)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=ROOT / "model_weights" / "mnist_cnn.npz")
    parser.add_argument("--level", type=int, default=3, help="zstd and gzip level (ours: 3)")
    parser.add_argument("--requests", type=int, default=200, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"body {results['body_bytes']:,} bytes, level {results['level']}; us per request")
    for name, case in results["cases"].items():
        print(
            f"  {name:<40} median {case['median_us']:9.1f}  min {case['min_us']:9.1f}"
            f"  wire {case['wire_bytes']:>8,} B"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
