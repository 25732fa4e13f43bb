"""A live training job as a user meets it, against a running server.

    convscope serve --port 8765 &        # with MNIST_DIR (or CONVSCOPE_MNIST_DIR) set
    python scripts/training_live.py http://127.0.0.1:8765

Starts a job with the defaults, follows its events, and meanwhile loads /healthz with wrk (C,
`wrk -t1 -c4 -d20s --latency`) and asks for 20 predictions with `training:<id>`. Prints the
time to the first event, the time to a validation accuracy of 98%, wrk's latency percentiles,
the predictions' latency and the job's median images a second. Loopback servers only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx

ENDINGS = ("done", "cancelled", "failed")


@dataclass
class Followed:
    """What the event stream said, each with the seconds since the POST."""

    first_event_s: float | None = None
    evaluations: list[tuple[float, int, float]] = field(default_factory=list)
    img_per_s: list[float] = field(default_factory=list)
    ending: tuple[str, dict[str, object]] | None = None
    finished: threading.Event = field(default_factory=threading.Event)


def follow(base: str, job: str, started: float, seen: Followed) -> None:
    """Read the job's server-sent events until it ends."""
    url = f"/api/v1/trainings/{job}/events"
    with (
        httpx.Client(base_url=base, timeout=None, trust_env=False) as client,
        client.stream("GET", url) as response,
    ):
        name = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            if not line.startswith("data:"):
                continue
            now = time.perf_counter() - started
            seen.first_event_s = seen.first_event_s if seen.first_event_s is not None else now
            data = json.loads(line.removeprefix("data:"))
            if name == "evaluation":
                seen.evaluations.append((now, data["step"], data["val_accuracy"]))
            elif name == "progress" and data.get("img_per_s"):
                seen.img_per_s.append(float(data["img_per_s"]))
            elif name in ENDINGS:
                seen.ending = (name, data)
                break
    seen.finished.set()


def healthz_under_wrk(base: str, seconds: int) -> str:
    """wrk's lines for the median, p99 and rate of /healthz."""
    command = ["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", f"{base}/healthz"]
    report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    keep = ("50%", "99%", "Requests/sec", "Non-2xx", "Socket errors")
    return "\n".join(line for line in report.splitlines() if any(k in line for k in keep))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8765")
    parser.add_argument("--wrk-seconds", type=int, default=20)
    args = parser.parse_args()
    client = httpx.Client(base_url=args.url, timeout=30, trust_env=False)
    started = time.perf_counter()
    answer = client.post("/api/v1/trainings", json={})
    answer.raise_for_status()
    job = answer.json()["id"]
    seen = Followed()
    threading.Thread(target=follow, args=(args.url, job, started, seen), daemon=True).start()
    time.sleep(3)  # past the data loading, into the steps
    print(healthz_under_wrk(args.url, args.wrk_seconds))
    one = [[1.0 if 8 <= row <= 20 and col == 14 else 0.0 for col in range(28)] for row in range(28)]
    latencies = []
    for _ in range(20):
        sent = time.perf_counter()
        reply = client.post("/api/v1/predict", json={"pixels": one, "model": f"training:{job}"})
        reply.raise_for_status()
        latencies.append((time.perf_counter() - sent) * 1000)
    latencies.sort()
    print(f"predict with training:<id>: median {latencies[10]:.0f} ms, max {latencies[-1]:.0f} ms")
    seen.finished.wait(900)
    print(f"first event {seen.first_event_s:.2f} s after the POST; ending {seen.ending}")
    reached = next((e for e in seen.evaluations if e[2] >= 0.98), None)
    print(f"first validation accuracy >= 0.98 (seconds, step, accuracy): {reached}")
    if seen.img_per_s:
        median = sorted(seen.img_per_s)[len(seen.img_per_s) // 2]
        print(f"job images/s, median of its progress events: {median:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
