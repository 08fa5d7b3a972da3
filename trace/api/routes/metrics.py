"""``GET /metrics``: this API process's Prometheus metrics (see ``medtrace.api.observe``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from medtrace.api.deps import MetricsDep

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
def read_metrics(metrics: MetricsDep) -> Response:
    """The Prometheus text exposition of this process's counters and the ledger's gauges."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
