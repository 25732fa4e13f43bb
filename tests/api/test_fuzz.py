"""Property-based fuzzing of every operation in the app's own OpenAPI schema, in process over
ASGI (schemathesis runs the lifespan): whatever arrives, the answer is never a 5xx.

Schemathesis' strategies drive plain Hypothesis tests here, one pytest item per operation and
generation mode (its lazy `from_fixture` loader does not run under pytest 9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from server.api.app import create_app
from server.config import Settings

OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/api/v1/model"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/model/layers/{name}/weights"),
    ("POST", "/api/v1/predict"),
    ("POST", "/api/v1/predict/file"),
    ("POST", "/api/v1/predict/batch"),
    ("POST", "/api/v1/counterfactual"),
    ("POST", "/api/v1/trainings"),
    ("GET", "/api/v1/trainings/{job_id}"),
    ("DELETE", "/api/v1/trainings/{job_id}"),
    ("GET", "/api/v1/trainings/{job_id}/events"),
    ("GET", "/api/v1/trainings/{job_id}/snapshots"),
    ("GET", "/api/v1/trainings/{job_id}/weights"),
]
# Operations with an input that can be wrong (a job id is any string: nothing to get wrong there)
WITH_INPUT = [
    op
    for op in OPERATIONS
    if op[1] not in ("/healthz", "/api/v1/models") and "{job_id}" not in op[1]
]
EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 30}


@pytest.fixture(scope="module")
def fuzz_app(make_settings: Callable[..., Settings]) -> FastAPI:
    """An app of its own: schemathesis keeps its lifespan running until the process exits.

    Counterfactual searches stop after 0.2 s: the untrained model never grows sure of a target.
    Training is switched off, so a valid POST /trainings gets 403 rather than a real job each
    (tests/api/test_trainings.py runs real ones); every job id the fuzzer makes up is unknown.
    """
    return create_app(make_settings(counterfactual_seconds=0.2, training=False))


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def fuzz(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    """Run EXAMPLES[mode] generated requests against one operation; fail on any 5xx."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,  # the same examples on every run
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    run()


def test_every_operation_in_the_schema_is_fuzzed(api_schema: Any) -> None:
    documented = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_valid_requests_never_get_a_server_error(api_schema: Any, method: str, path: str) -> None:
    fuzz(api_schema, method, path, GenerationMode.POSITIVE)


@pytest.mark.parametrize(("method", "path"), WITH_INPUT)
def test_invalid_requests_never_get_a_server_error(api_schema: Any, method: str, path: str) -> None:
    fuzz(api_schema, method, path, GenerationMode.NEGATIVE)
