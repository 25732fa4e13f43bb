"""GET /metrics: the Prometheus text format, for a scraper."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from server.api.prometheus import Metrics

router = APIRouter(tags=["health"], include_in_schema=False)


@router.get("/metrics")
def prometheus_metrics(request: Request) -> Response:
    """Every counter, gauge and histogram of this server (all its workers)."""
    metrics: Metrics = request.app.state.metrics
    return Response(
        metrics.exposition(),
        media_type=CONTENT_TYPE_PLAIN_0_0_4,
        headers={"cache-control": "no-store"},
    )
