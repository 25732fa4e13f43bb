"""`convscope bench`: the figures it reports and the settings it refuses (no timing is checked:
a test cannot tell a fast machine from a fast engine)."""

from __future__ import annotations

import importlib.util

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from server.cli import bench


def blas_threads() -> int:
    return next(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_a_short_run_reports_every_figure_and_its_lanes() -> None:
    """Two lanes run BLAS on one thread while the figures run, and give it back after."""
    before = blas_threads()
    result = bench.run(None, seconds=0.05, rounds=1, torch_threads=2, lanes=2)
    assert blas_threads() == before
    assert result["lanes"] == 2
    assert result["blas"]["threads"] == 1
    for key in ("forward_b1_ms", "forward_b1_trace_ms"):
        assert result[key] > 0
    for key in ("forward_b256_img_per_s", "train_b64_img_per_s"):
        assert result[key] > 0
    if importlib.util.find_spec("torch") is None:
        assert result["torch"] is None
    else:
        assert set(result["ratios"]) == {
            "train_b64",
            "forward_b256",
            "forward_b1",
            "forward_b1_trace_vs_torch_b1",
        }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lanes", "0"], "--lanes must be >= 1"),
        (["--cpu-time", "--lanes", "2"], "--cpu-time adds up every lane's CPU time"),
        (["--lanes", "2", "--blas-threads", "2"], "lanes run BLAS on one thread each"),
    ],
)
def test_settings_that_would_mislead_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = blas_threads()
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert blas_threads() == before  # refused before it changed anything


def test_the_documented_cpu_time_layer_table_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/speed.md's `--layers ... --blas-threads 1 --cpu-time` (one lane by default there)."""
    with threadpool_limits(limits=None, user_api="blas"):  # main sets BLAS threads for the process
        code = bench.main(
            ["--layers", "--arch", "mlp", "--seconds", "0.01", "--blas-threads", "1", "--cpu-time"]
        )
    assert code == 0
    assert "| fc1 (dense) |" in capsys.readouterr().out
