#!/usr/bin/env python3
"""Per-stage time of one predict request in this process, without HTTP: where the ms go.

Runs the route's own steps on the pad digit (scripts/pad_digit.py) and prints the median CPU ms
of each over --runs repetitions as JSON: base64, decode, preprocess, trace, body, json, zstd.
CPU time of this thread, not wall time: on a shared machine it barely moves with the load.

    python scripts/stage_times.py --encoding uint8 --runs 300
    python scripts/stage_times.py --encoding uint8 --runs 300 --neighbors  # with the atlas's
    python -m cProfile -s cumtime scripts/stage_times.py --runs 300 | head -40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import zstandard
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pad_digit beside this file

from pad_digit import predict_body

from server import preprocess
from server.api.compute.work import explanation_body
from server.api.encoding import ORJSON_OPTIONS
from server.api.inputs import Clock, decode_base64_image
from server.api.schemas.predict import PredictRequest
from server.inference import Predictor

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "model_weights" / "mnist_cnn.npz"


def stage_times(
    predictor: Predictor, encoding: str, runs: int, level: int, neighbors: bool = False
) -> dict[str, float]:
    """Median CPU ms per stage over `runs` requests for the same body."""
    request = PredictRequest.model_validate({**predict_body(encoding), "neighbors": neighbors})
    assert request.image is not None
    compressor = zstandard.ZstdCompressor(level=level)
    laps: dict[str, list[float]] = {}
    state: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], None]]] = [
        ("base64", lambda: state.update(data=decode_base64_image(request.image or ""))),
        ("decode", lambda: state.update(gray=preprocess.decode(state["data"]))),  # as the route
        ("preprocess", lambda: state.update(image=preprocess.digit_from_gray(state["gray"]))),
        (
            "trace",
            lambda: state.update(
                explained=predictor.explain(
                    state["image"],
                    activations=True,
                    saliency=False,
                    target=None,
                    neighbors=neighbors,
                )
            ),
        ),
        (
            "body",
            lambda: state.update(
                body=explanation_body(
                    state["explained"], state["image"], request, predictor, Clock()
                )
            ),
        ),
        ("json", lambda: state.update(raw=orjson.dumps(state["body"], option=ORJSON_OPTIONS))),
        ("zstd", lambda: state.update(wire=compressor.compress(state["raw"]))),
    ]
    for _ in range(runs):
        for name, step in steps:
            start = time.thread_time()
            step()
            laps.setdefault(name, []).append((time.thread_time() - start) * 1000)
    report = {name: round(statistics.median(values), 3) for name, values in laps.items()}
    report["sum"] = round(sum(report.values()), 3)
    report["json_bytes"] = len(state["raw"])
    report["zstd_bytes"] = len(state["wire"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoding", default="uint8", choices=["list", "base64", "uint8"])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--zstd-level", type=int, default=1, help="the server's is 1")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument(
        "--neighbors", action="store_true", help="ask for the 8 nearest atlas digits too"
    )
    args = parser.parse_args(argv)
    with threadpool_limits(limits=1, user_api="blas"):  # as the server runs it
        predictor = Predictor.from_file(args.weights)
        if args.neighbors:
            predictor.neighbor_index  # noqa: B018 (computed once, as the compute process warms it)
        report = stage_times(predictor, args.encoding, args.runs, args.zstd_level, args.neighbors)
    summary = {"encoding": args.encoding, "runs": args.runs, "neighbors": args.neighbors}
    print(json.dumps({**summary, "cpu_ms": report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
