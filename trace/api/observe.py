"""What an API process tells its operators: Prometheus metrics and a log line per request.

Counters (events captured, refusals, readings, requests) count what this process handled:
with several API processes each serves its own ``/metrics``, and Prometheus sums them
(``sum(rate(medtrace_events_captured_total[5m]))``). The ledger gauges are read from the
database at each scrape, so every process reports the same values for them.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medtrace.models import utcnow
from medtrace.schemas.capture import CaptureResult
from medtrace.schemas.sensors import ReadingsResponse
from medtrace.services import log as log_service

_log = logging.getLogger("medtrace.http")
REQUEST_ID_HEADER = "X-Request-Id"


class _LedgerCollector(Collector):
    """The log's size and integration lag, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with Session(self._engine) as session:
            status = log_service.ledger_status(session=session, now=utcnow())
        yield GaugeMetricFamily("medtrace_ledger_leaves", "Leaves in the log", status.leaves)
        yield GaugeMetricFamily(
            "medtrace_ledger_checkpoint_size",
            "Tree size of the latest signed checkpoint",
            status.checkpoint_size,
        )
        yield GaugeMetricFamily(
            "medtrace_integration_lag_leaves",
            "Leaves not yet covered by a signed checkpoint",
            status.lag_leaves,
        )
        yield GaugeMetricFamily(
            "medtrace_integration_lag_seconds",
            "Age of the latest checkpoint while leaves wait beyond it (0 when none wait)",
            status.lag_seconds,
        )


class Metrics:
    """The metrics of one app, in a registry of its own (several apps may share a process)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.events_captured = Counter(
            "medtrace_events_captured",
            "Custody events captured (not retries), by type",
            ["type"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "medtrace_refusals",
            "Requests refused with a rule (4xx), by rule",
            ["rule"],
            registry=self.registry,
        )
        self.readings = Counter(
            "medtrace_readings",
            "Sensor readings relayed, by outcome (accepted, duplicate, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "medtrace_http_request_duration_seconds",
            "HTTP requests by route template and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.registry.register(_LedgerCollector(engine))

    def count_captured(self, types: Sequence[str], results: Sequence[CaptureResult]) -> None:
        """Count the new events of a capture answer (``types`` in the same order)."""
        for event_type, result in zip(types, results, strict=True):
            if not result.duplicate:
                self.events_captured.labels(type=event_type).inc()

    def count_readings(self, answer: ReadingsResponse) -> None:
        """Count a readings answer by outcome."""
        self.readings.labels(outcome="accepted").inc(answer.accepted)
        self.readings.labels(outcome="duplicate").inc(answer.duplicates)
        self.readings.labels(outcome="rejected").inc(answer.rejected)


class RequestLog:
    """One log line and one histogram sample per request, with a request id.

    The id is the caller's ``X-Request-Id`` when it sends one, else a new one; it is echoed in
    the response so a client's report can be matched to the server's line. A refusal's rule
    (recorded in the request state by the error handlers and the limits) is logged and
    counted.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode(), b"")
        request_id = given.decode("latin-1")[:64] or secrets.token_hex(8)
        started = time.perf_counter()
        status = 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._app(scope, receive, tagged)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - started)

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        rule = scope.get("state", {}).get("rule")
        self._metrics.requests.labels(route=route, status=str(status)).observe(seconds)
        if rule is not None:
            self._metrics.refusals.labels(rule=rule).inc()
        fields = {
            "request_id": request_id,
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        }
        if rule is not None:
            fields["rule"] = rule
        text = f"{scope['method']} {route} {status} {fields['duration_ms']} ms"
        _log.info(text + (f" {rule}" if rule else ""), extra=fields)
