"""Request guards through a real server: the largest body, a rate per API token, and no
NUL character in a URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medtrace.api.limits import TokenBuckets
from medtrace.iot.client import ReadingsClient
from medtrace.iot.errors import CaptureRejected, CaptureUnavailable
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import CaptureRefused, ServerUnreachable
from support.chain import Chain
from support.live import LiveServer, start_server


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """A small body limit; the rate limit off, with a burst that would throttle at once if
    the off switch did not work."""
    return {
        "MEDTRACE_MAX_BODY_BYTES": "4096",
        "MEDTRACE_RATE_LIMIT": "0",
        "MEDTRACE_RATE_BURST": "5",
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_body_over_the_limit_is_refused_before_it_is_read(chain: Chain) -> None:
    before = chain.server.snapshot()
    big = b"[" + b" " * 5000 + b"]"
    declared = httpx.post(
        f"{chain.server.url}/api/v1/capture",
        content=big,
        headers={**auth(chain.maker.token), "Content-Type": "application/json"},
    )
    streamed = httpx.post(  # no Content-Length: chunked transfer encoding
        f"{chain.server.url}/api/v1/capture",
        content=iter([big[:3000], big[3000:]]),
        headers={**auth(chain.maker.token), "Content-Type": "application/json"},
    )

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["detail"]["rule"] == "input.too_large"
    assert chain.server.snapshot() == before
    small = httpx.post(
        f"{chain.server.url}/api/v1/capture", json=[], headers=auth(chain.maker.token)
    )
    assert small.json()["detail"]["rule"] == "capture.empty", "a small body still gets in"


def test_with_the_rate_limit_off_a_token_is_never_throttled(chain: Chain) -> None:
    with httpx.Client(base_url=chain.server.url, headers=auth(chain.hub.token)) as client:
        statuses = {client.get("/api/v1/alerts").status_code for _ in range(50)}
    assert statuses == {200}


@pytest.fixture
def throttled(fresh_database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server allowing each token 3 requests at once, then one every 5 s (slow enough that
    a loaded machine cannot refill a bucket between the test's requests)."""
    server = start_server(
        database_url=fresh_database_url,
        data_dir=tmp_path / "server",
        env={"MEDTRACE_RATE_LIMIT": "0.2", "MEDTRACE_RATE_BURST": "3"},
    )
    yield server
    server.stop()


def test_a_token_over_its_rate_gets_429_with_retry_after(throttled: LiveServer) -> None:
    url = f"{throttled.url}/api/v1/alerts"
    first = [httpx.get(url, headers=auth("mt_one")).status_code for _ in range(3)]
    over = httpx.get(url, headers=auth("mt_one"))

    assert first == [401, 401, 401], "unknown tokens count against their own bucket"
    assert over.status_code == 429
    assert over.json()["detail"]["rule"] == "rate.limited"
    assert int(over.headers["Retry-After"]) >= 1
    assert httpx.get(url, headers=auth("mt_two")).status_code == 401, "another token is free"
    assert httpx.get(f"{throttled.url}/healthz").status_code == 200, "no token, no limit"
    time.sleep(float(over.headers["Retry-After"]))
    assert httpx.get(url, headers=auth("mt_one")).status_code == 401


def test_the_clients_take_429_as_come_back_later(throttled: LiveServer) -> None:
    station = CaptureClient(throttled.url, "mt_station")
    bridge = ReadingsClient(throttled.url, "mt_bridge")
    for _ in range(3):
        with pytest.raises(CaptureRefused):
            station.capture([{}])
        with pytest.raises(CaptureRejected):
            bridge.relay([("t", b"p")])

    with pytest.raises(ServerUnreachable, match="rate limited"):
        station.capture([{}])
    with pytest.raises(CaptureUnavailable, match="429"):
        bridge.relay([("t", b"p")])
    station.close()
    bridge.close()


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2, burst=3, clock=lambda: now[0])

    assert [buckets.take(b"k") for _ in range(3)] == [0, 0, 0]
    assert buckets.take(b"k") == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take(b"k") == 0
    now[0] = 100.0
    assert [buckets.take(b"k") for _ in range(4)][-1] > 0, "never more than the burst"


@pytest.mark.parametrize(
    "path", ["/api/v1/alerts?gtin=%00", "/api/v1/stations/a%00b", "/fhir/Device?udi-di=%00"]
)
def test_a_nul_character_in_the_url_is_refused_by_name(chain: Chain, path: str) -> None:
    """Found by the OpenAPI fuzzer: PostgreSQL text cannot hold a NUL."""
    response = httpx.get(chain.server.url + path, headers=auth(chain.hub.token))

    assert response.status_code == 422, response.text
    assert response.json()["detail"]["rule"] == "input.nul_character"
