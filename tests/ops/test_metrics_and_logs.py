"""What operators see of a real API process: Prometheus metrics and JSON request logs."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from medtrace.demo import GTIN
from support.chain import EXPIRY, LOT, Chain, new_serial


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"MEDTRACE_LOG_FORMAT": "json"}


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(chain: Chain) -> Samples:
    """Every sample of ``GET /metrics``, by name and labels."""
    response = httpx.get(f"{chain.server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_captures_refusals_readings_and_the_ledger(chain: Chain) -> None:
    before = scrape(chain)
    envelopes = [
        chain.maker.station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY) for _ in range(3)
    ]
    chain.maker.api.capture(envelopes)
    chain.maker.api.capture(envelopes[:1])  # a retry: not captured again
    refused = chain.maker.station.ship(GTIN, new_serial(), to=chain.hub.gln)
    answer = httpx.post(
        f"{chain.server.url}/api/v1/capture",
        json=[refused],
        headers={"Authorization": f"Bearer {chain.maker.token}"},
    )
    assert answer.json()["detail"]["rule"] == "custody.unknown_unit"
    httpx.post(
        f"{chain.server.url}/api/v1/readings",
        json=[{"topic": "medtrace/sensors/nobody/readings", "payload": "{}"}],
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    leaves = chain.server.leaves()
    chain.server.wait_for_checkpoint(leaves)

    after = scrape(chain)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("medtrace_events_captured_total", type="commission") == 3
    assert grew("medtrace_refusals_total", rule="custody.unknown_unit") == 1
    assert grew("medtrace_readings_total", outcome="rejected") == 1
    assert value(after, "medtrace_ledger_leaves") == leaves
    assert value(after, "medtrace_ledger_checkpoint_size") == leaves
    assert value(after, "medtrace_integration_lag_leaves") == 0
    assert value(after, "medtrace_integration_lag_seconds") == 0
    assert (
        grew("medtrace_http_request_duration_seconds_count", route="/api/v1/capture", status="201")
        >= 1
    )


def logged(chain: Chain, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The JSON log lines of one request (written just after its answer is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        for line in chain.server.log().splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if parsed.get("request_id") == request_id:
                lines.append(parsed)
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_each_request_is_one_json_log_line_with_its_id_route_status_and_rule(
    chain: Chain,
) -> None:
    envelope = chain.maker.station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    envelope["event"]["lot"] = "FORGED"
    response = httpx.post(
        f"{chain.server.url}/api/v1/capture",
        json=[envelope],
        headers={"Authorization": f"Bearer {chain.maker.token}", "X-Request-Id": "req-4711"},
    )
    assert response.status_code == 403
    assert response.headers["X-Request-Id"] == "req-4711"

    mine = logged(chain, "req-4711")

    assert len(mine) == 1, chain.server.log()[-3000:]
    assert mine[0]["logger"] == "medtrace.http"
    assert (mine[0]["method"], mine[0]["route"], mine[0]["status"]) == (
        "POST",
        "/api/v1/capture",
        403,
    )
    assert mine[0]["rule"] == "signature.invalid"
    assert mine[0]["duration_ms"] >= 0
    fresh = httpx.get(f"{chain.server.url}/healthz").headers["X-Request-Id"]
    assert logged(chain, fresh), "an id is made up when the caller sends none"
