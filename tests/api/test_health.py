"""GET /healthz: answers once the model is loaded, and only to GET."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def test_healthz_says_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_refuses_post_with_405(client: TestClient, kit: Any) -> None:
    kit.assert_error(client.post("/healthz"), 405, "method not allowed")


def test_healthz_needs_the_model_loaded(client: TestClient) -> None:
    # The route depends on the predictor the lifespan loaded; the app state holds it.
    assert client.app.state.models.get(None) is not None  # type: ignore[attr-defined]
    assert client.get("/healthz").status_code == 200
