"""Settings: CONVSCOPE_* environment variables, CORS, start-up failures, `convscope serve`."""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from fastapi.testclient import TestClient

from server.api.app import StartupError, create_app
from server.api.connections import GuardedHttpToolsProtocol
from server.cli import serve
from server.config import Settings, compute_process_pays
from server.logs import logging_config

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://draw.example"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No CONVSCOPE_* variable from the outside world leaks into these tests, nor any they set
    (`convscope serve` sets some for its workers) out of them."""
    for name in list(os.environ):
        if name.startswith("CONVSCOPE_"):
            monkeypatch.delenv(name)
    yield monkeypatch
    for name in list(os.environ):  # then monkeypatch puts the outside world's back
        if name.startswith("CONVSCOPE_"):
            del os.environ[name]


# --- environment ---------------------------------------------------------------------------


def test_defaults_are_the_documented_limits(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.max_image_side == 4096
    assert settings.max_batch == 256
    assert settings.cors_origins == []
    assert settings.weights is None
    assert settings.models_dir == ROOT / "model_weights"
    assert settings.default_model == "mnist_cnn"
    assert settings.default_weights == ROOT / "model_weights" / "mnist_cnn.npz"
    assert settings.web_dir == ROOT / "web"
    assert settings.body_timeout_s == 10.0
    assert settings.header_timeout_s == 10.0
    assert settings.keep_alive_s == 5
    assert settings.max_concurrency == 64
    assert settings.log_format == "text"


def test_prefixed_environment_variables_are_read(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("CONVSCOPE_WEIGHTS", str(tmp_path / "w.npz"))
    clean_env.setenv("CONVSCOPE_MODELS_DIR", str(tmp_path / "models"))
    clean_env.setenv("CONVSCOPE_DEFAULT_MODEL", "tiny")
    clean_env.setenv("CONVSCOPE_WEB_DIR", str(tmp_path / "web"))
    clean_env.setenv("CONVSCOPE_MAX_BODY_BYTES", "12345")
    clean_env.setenv("CONVSCOPE_MAX_IMAGE_SIDE", "640")
    clean_env.setenv("CONVSCOPE_MAX_BATCH", "8")
    clean_env.setenv("CONVSCOPE_CORS_ORIGINS", json.dumps([ORIGIN, "http://localhost:5173"]))
    clean_env.setenv("CONVSCOPE_GZIP_LEVEL", "9")
    clean_env.setenv("CONVSCOPE_LOG_LEVEL", "debug")
    clean_env.setenv("CONVSCOPE_LOG_FORMAT", "json")
    clean_env.setenv("CONVSCOPE_BODY_TIMEOUT_S", "2.5")
    clean_env.setenv("CONVSCOPE_HEADER_TIMEOUT_S", "3")
    clean_env.setenv("CONVSCOPE_KEEP_ALIVE_S", "7")
    clean_env.setenv("CONVSCOPE_MAX_CONCURRENCY", "9")
    settings = Settings()
    assert settings.weights == tmp_path / "w.npz"
    assert settings.default_weights == tmp_path / "w.npz"  # an explicit file wins
    assert settings.models_dir == tmp_path / "models"
    assert settings.default_model == "tiny"
    assert settings.web_dir == tmp_path / "web"
    assert settings.max_body_bytes == 12345
    assert settings.max_image_side == 640
    assert settings.max_batch == 8
    assert settings.cors_origins == [ORIGIN, "http://localhost:5173"]
    assert settings.gzip_level == 9
    assert settings.log_level == "debug"
    assert settings.log_format == "json"
    assert settings.body_timeout_s == 2.5
    assert settings.header_timeout_s == 3.0
    assert settings.keep_alive_s == 7
    assert settings.max_concurrency == 9


def test_unprefixed_variables_are_ignored(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MAX_BODY_BYTES", "1")
    clean_env.setenv("WEIGHTS", "/nowhere.npz")
    settings = Settings()
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.default_weights.name == "mnist_cnn.npz"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONVSCOPE_MAX_BODY_BYTES", "0"),
        ("CONVSCOPE_GZIP_LEVEL", "10"),
        ("CONVSCOPE_LOG_LEVEL", "loud"),
        ("CONVSCOPE_CORS_ORIGINS", "not json"),
        ("CONVSCOPE_LOG_FORMAT", "xml"),
        ("CONVSCOPE_BODY_TIMEOUT_S", "0"),
        ("CONVSCOPE_HEADER_TIMEOUT_S", "-1"),
        ("CONVSCOPE_KEEP_ALIVE_S", "0"),
        ("CONVSCOPE_MAX_CONCURRENCY", "0"),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(
        (pydantic.ValidationError, ValueError), match=name.removeprefix("CONVSCOPE_").lower()
    ):
        Settings()


def test_environment_limits_reach_the_app(
    clean_env: pytest.MonkeyPatch, weights_path: Path, kit: Any
) -> None:
    clean_env.setenv("CONVSCOPE_WEIGHTS", str(weights_path))
    clean_env.setenv("CONVSCOPE_MAX_BATCH", "2")
    clean_env.setenv("CONVSCOPE_MAX_IMAGE_SIDE", "100")
    clean_env.setenv("CONVSCOPE_MAX_BODY_BYTES", "50000")
    grid = np.zeros((28, 28)).tolist()
    with TestClient(create_app(Settings())) as client:
        batch = client.post("/api/v1/predict/batch", json={"pixels": [grid] * 3})
        kit.assert_error(batch, 413, "at most 2")
        wide = kit.png_b64(kit.draw_digit(1, size=101))
        kit.assert_error(client.post("/api/v1/predict", json={"image": wide}), 413, "101x101")
        big = client.post("/api/v1/predict", json={"image": "A" * 50_000})
        kit.assert_error(big, 413, "50000")


# --- CORS ----------------------------------------------------------------------------------


def test_no_cors_header_by_default(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/v1/predict",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture(scope="module")
def cors_client(make_settings: Callable[..., Settings]) -> Any:
    with TestClient(create_app(make_settings(cors_origins=[ORIGIN]))) as client:
        yield client


def test_configured_origin_gets_the_cors_header(cors_client: TestClient) -> None:
    response = cors_client.get("/healthz", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_configured_origin_may_post_after_a_preflight(
    cors_client: TestClient, digit_pixels: np.ndarray
) -> None:
    preflight = cors_client.options(
        "/api/v1/predict",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    response = cors_client.post(
        "/api/v1/predict", json={"pixels": digit_pixels.tolist()}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_other_origins_get_no_cors_header(cors_client: TestClient) -> None:
    response = cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_header_is_on_error_answers_too(cors_client: TestClient, kit: Any) -> None:
    # A page on the allowed origin can only read the error's detail with the header present.
    bad = cors_client.post("/api/v1/predict", json={}, headers={"Origin": ORIGIN})
    kit.assert_error(bad, 422, "exactly one")
    assert bad.headers["access-control-allow-origin"] == ORIGIN
    too_big = cors_client.post(
        "/api/v1/predict",
        content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
    )
    kit.assert_error(too_big, 413, "limit")
    assert too_big.headers.get("access-control-allow-origin") == ORIGIN


# --- start-up ------------------------------------------------------------------------------


def test_missing_weights_file_stops_start_up_naming_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = tmp_path / "absent" / "mnist_cnn.npz"
    app = create_app(make_settings(weights=missing))
    with pytest.raises(StartupError, match=re.escape(str(missing))), TestClient(app):
        pass
    gc.collect()


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a zip file", b"PK\x03\x04" + bytes(100)],
    ids=["empty", "text", "broken-zip"],
)
def test_corrupt_weights_file_stops_start_up_naming_it(
    make_settings: Callable[..., Settings], tmp_path: Path, content: bytes
) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(content)
    app = create_app(make_settings(weights=corrupt))
    with pytest.raises(StartupError, match=re.escape(str(corrupt))), TestClient(app):
        pass
    # a failed load must not leave the file open: collect now, so a leaked handle's
    # ResourceWarning is reported against this test rather than a later one
    gc.collect()


def test_truncated_weights_file_stops_start_up_naming_it(
    make_settings: Callable[..., Settings], weights_path: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.npz"
    data = weights_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    app = create_app(make_settings(weights=truncated))
    with pytest.raises(StartupError, match=re.escape(str(truncated))), TestClient(app):
        pass
    gc.collect()  # a leaked file handle would warn here, not in a later test


# --- `convscope serve` ---------------------------------------------------------------------


def test_convscope_serve_help_via_the_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli.convscope", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--workers", "--weights", "--log-level"):
        assert option in result.stdout


def test_convscope_serve_help_via_the_installed_script() -> None:
    script = Path(sys.executable).with_name("convscope")
    if not script.exists():
        pytest.skip(f"{script} is not installed (`pip install -e .` installs it)")
    result = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: convscope serve" in result.stdout


def test_serve_hands_its_options_to_uvicorn(
    clean_env: pytest.MonkeyPatch, weights_path: Path
) -> None:
    import uvicorn

    calls: list[tuple[Any, dict[str, Any]]] = []
    clean_env.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    assert (
        serve.main(["--weights", str(weights_path), "--port", "8123", "--log-level", "debug"]) == 0
    )
    ((target, options),) = calls
    assert target == "server.api.main:create_default_app"
    assert options["factory"] is True
    assert (options["host"], options["port"], options["workers"]) == ("127.0.0.1", 8123, 1)
    assert options["log_level"] == "debug"
    assert os.environ["CONVSCOPE_WEIGHTS"] == str(weights_path.resolve())
    # the hardening: a header deadline in the protocol, uvicorn's keep-alive, our access lines
    assert options["http"] is GuardedHttpToolsProtocol
    assert options["timeout_keep_alive"] == 5
    assert options["access_log"] is False
    assert options["log_config"] == logging_config("debug", "text")


def test_serve_hands_the_environment_settings_to_uvicorn(
    clean_env: pytest.MonkeyPatch, weights_path: Path
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    clean_env.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    clean_env.setenv("CONVSCOPE_KEEP_ALIVE_S", "11")
    clean_env.setenv("CONVSCOPE_LOG_FORMAT", "json")
    assert serve.main(["--weights", str(weights_path)]) == 0
    ((options),) = calls
    assert options["timeout_keep_alive"] == 11
    formatter = options["log_config"]["formatters"]["main"]
    assert formatter == {"()": "server.logs.JsonFormatter"}


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_gives_several_workers_a_fresh_metrics_directory(
    clean_env: pytest.MonkeyPatch, weights_path: Path, workers: int
) -> None:
    import uvicorn

    clean_env.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    seen: list[str | None] = []

    def run(app: str, **options: Any) -> None:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        seen.append(directory)
        if directory is not None:
            assert Path(directory).is_dir()
            assert not any(Path(directory).iterdir())
            (Path(directory) / "counter_1.db").write_bytes(b"a worker wrote here")

    clean_env.setattr(uvicorn, "run", run)
    assert serve.main(["--weights", str(weights_path), "--workers", str(workers)]) == 0
    (directory,) = seen
    if workers == 1:
        assert directory is None  # one process: plain in-memory metrics
    else:
        assert directory is not None
        assert not Path(directory).exists()  # removed at exit, files and all
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


@pytest.mark.parametrize(
    ("cpus", "workers", "expected"), [(1, 1, False), (2, 1, True), (2, 2, False), (4, 2, True)]
)
def test_serve_runs_a_compute_process_when_every_process_gets_a_cpu(
    clean_env: pytest.MonkeyPatch, weights_path: Path, cpus: int, workers: int, expected: bool
) -> None:
    """A worker and its compute process need a CPU each, or the threads answer faster."""
    serve_on_cpus(clean_env, cpus, ["--weights", str(weights_path), "--workers", str(workers)])
    assert Settings().compute_process is expected  # as each worker reads its environment


def test_compute_defaults_follow_a_containers_cpu_quota(clean_env: pytest.MonkeyPatch) -> None:
    """A server in a pod limited to 2 CPUs on a 64-core node gets one compute thread and a
    compute process, as on a 2-CPU machine, not 63 threads (docs/deploy.md, the settings table)."""
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    clean_env.setattr("server.cores.cpu_quota", lambda cgroup=None: 2.0)
    settings = Settings()
    assert settings.compute_threads == 1
    assert settings.compute_process is True
    assert compute_process_pays(workers=2) is False


def test_serve_keeps_the_compute_process_setting_it_is_given(
    clean_env: pytest.MonkeyPatch, weights_path: Path
) -> None:
    clean_env.setenv("CONVSCOPE_COMPUTE_PROCESS", "false")
    serve_on_cpus(clean_env, 8, ["--weights", str(weights_path)])
    assert Settings().compute_process is False


def serve_on_cpus(monkeypatch: pytest.MonkeyPatch, cpus: int, argv: list[str]) -> None:
    """`convscope serve argv` as if the process could use `cpus` CPUs (and no container CPU quota
    capped them), uvicorn not started."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.setattr("server.cores.cpu_quota", lambda cgroup=None: None)
    assert serve.main(argv) == 0


def test_serve_refuses_a_bad_weights_file_in_one_line(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    clean_env.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn must not start"))
    missing = tmp_path / "missing.npz"
    assert serve.main(["--weights", str(missing)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("convscope serve: cannot load the model weights:")
    assert str(missing) in error
    assert "Traceback" not in error
