"""schemathesis, which reads only /openapi.json, against a real server: every phase (examples,
coverage, fuzzing, stateful through the links), every check, a bounded number of cases per
operation; once with training off, once with it on (small jobs: schemathesis_hooks.py). What it
runs is what `st run` runs by hand, with the repository's schemathesis.toml.

    st run http://127.0.0.1:8000/openapi.json --checks all --generation-deterministic
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli.local_server import local_server

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
EXAMPLES = 40  # cases per operation in each generated phase: about 30 s a run on two cores
SMALL_JOBS = {"CONVSCOPE_MAX_QUEUED": "2", "CONVSCOPE_MNIST_DOWNLOAD": "false"}


def run_schemathesis(url: str) -> subprocess.CompletedProcess[str]:
    command = [str(ST), "run", f"{url}/openapi.json", "--checks", "all"]
    command += ["--max-examples", str(EXAMPLES), "--generation-deterministic"]
    command += ["--request-timeout", "60", "--no-color"]
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parent),
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
    }
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def settings_for(training: bool) -> dict[str, str]:
    """The default server's settings, searches cut short; training on needs MNIST."""
    env = {"CONVSCOPE_TRAINING": str(training).lower(), "CONVSCOPE_COUNTERFACTUAL_SECONDS": "0.2"}
    if not training:
        return env
    directory = os.environ.get("MNIST_DIR")
    if not directory or not Path(directory).is_dir():
        pytest.skip("MNIST_DIR is not set; training jobs need MNIST (CI: ../shared/mnist)")
    return {**env, **SMALL_JOBS, "CONVSCOPE_MNIST_DIR": str(Path(directory).resolve())}


@pytest.mark.skipif(
    not ST.exists(), reason=f"schemathesis' st is not installed beside {sys.executable}"
)
@pytest.mark.parametrize("training", [False, True], ids=["training-off", "training-on"])
def test_schemathesis_finds_nothing(training: bool) -> None:
    with local_server(env=settings_for(training)) as server:
        result = run_schemathesis(server.url)
    summary = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"st run found problems (exit {result.returncode}):\n{summary}"
    assert "0 passed" not in result.stdout.splitlines()[-1], summary
