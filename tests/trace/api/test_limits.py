"""Request guards through a real server: the largest body, a rate per API token, and no
NUL character in a URL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medtrace.api.limits import BodyLimit, RouteLimit, TokenBuckets
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
        "MEDTRACE_MAX_LOT_BODY_BYTES": "16384",
        "MEDTRACE_RATE_LIMIT": "0",
        "MEDTRACE_RATE_BURST": "5",
    }


JSON_LD = "application/ld+json"


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


@pytest.mark.parametrize("path", ["/api/v1/lots", "/epcis/capture"])
@pytest.mark.parametrize("token", [None, "maker"])
def test_a_route_with_a_larger_limit_refuses_past_it_before_authentication(
    chain: Chain, path: str, token: str | None
) -> None:
    """Issue 18 item 7: an unauthenticated lot upload was spooled whole (1.5 GB) before its
    401, and a chunked EPCIS document was read whole before its 413. The lot limit is 16 KiB
    here; the EPCIS one is 32 MiB."""
    limit = 16384 if path == "/api/v1/lots" else 32 * 1024 * 1024
    rule = "input.too_large" if path == "/api/v1/lots" else "capture.too_large"
    headers = auth(chain.maker.token) if token else {}
    headers["Content-Type"] = "multipart/form-data; boundary=x" if "lots" in path else JSON_LD
    chunk = b" " * 65536
    before = chain.server.snapshot()

    declared = httpx.post(
        chain.server.url + path, content=chunk * (limit // len(chunk) + 1), headers=headers
    )
    streamed = httpx.post(
        chain.server.url + path,
        content=iter([chunk] * (limit // len(chunk) + 2)),
        headers=headers,
        timeout=30,
    )

    assert declared.status_code == 413, declared.text
    assert declared.json()["detail"]["rule"] == rule
    # The EPCIS route authenticates before it reads: a stranger's stream is never read.
    unread = token is None and path == "/epcis/capture"
    assert streamed.status_code == (401 if unread else 413), streamed.text
    assert streamed.json()["detail"]["rule"] == ("auth.missing_token" if unread else rule)
    assert chain.server.snapshot() == before


async def _pulled_before_refusal(app: ASGIApp, chunks: int) -> tuple[int, list[Message]]:
    """Stream ``chunks`` chunks of 1 000 bytes through a 10 000-byte ``BodyLimit`` in front
    of ``app``: how many chunks it pulled, and what it sent."""
    pulled, sent = 0, []

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": pulled < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/api/v1/lots", "headers": []}
    limited = BodyLimit(app, max_bytes=10, routes=[RouteLimit("/api/v1/lots", 10_000)])
    await limited(scope, receive, send)
    return pulled, sent


def test_a_streamed_body_is_read_no_further_than_its_limit_and_one_chunk() -> None:
    """The app reads the whole body before it authenticates (as FastAPI parses a form
    before the route's dependencies); it is stopped at the limit, and never acts."""
    acted = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        acted.append(True)
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    pulled, sent = asyncio.run(_pulled_before_refusal(app, chunks=100_000))

    assert pulled == 11, "10 000 bytes and the chunk that passed them"
    assert sent[0]["status"] == 413 and acted == []
    assert json.loads(sent[1]["body"])["detail"]["rule"] == "input.too_large"


def test_with_the_rate_limit_off_a_token_is_never_throttled(chain: Chain) -> None:
    with httpx.Client(base_url=chain.server.url, headers=auth(chain.hub.token)) as client:
        statuses = {client.get("/api/v1/alerts").status_code for _ in range(50)}
    assert statuses == {200}


@pytest.fixture
def throttled(fresh_database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server allowing each token 3 requests at once, then one every 5 s (slow enough that
    a loaded machine cannot refill a bucket between the test's requests), and a client
    network 6 requests whose token fails authentication, then one every 5 s."""
    server = start_server(
        database_url=fresh_database_url,
        data_dir=tmp_path / "server",
        env={
            "MEDTRACE_RATE_LIMIT": "0.2",
            "MEDTRACE_RATE_BURST": "3",
            "MEDTRACE_AUTH_FAILURE_RATE": "0.2",
            "MEDTRACE_AUTH_FAILURE_BURST": "6",
        },
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


def test_no_spelling_of_the_header_gets_a_bucket_of_its_own(throttled: LiveServer) -> None:
    """Issue 18 item 8: authentication accepts any case of the scheme and spaces around the
    token, and the buckets were keyed by the raw header (400 spellings, none refused)."""
    url = f"{throttled.url}/api/v1/alerts"
    spellings = ["Bearer mt_one", "bearer mt_one", "BEARER mt_one", "Bearer   mt_one"]
    statuses = [
        httpx.get(url, headers={"Authorization": spelling}).status_code
        for spelling in spellings * 2
    ]

    assert statuses == [401] * 3 + [429] * 5, "one token, one bucket"


def test_made_up_tokens_from_one_network_are_bounded_together(throttled: LiveServer) -> None:
    url = f"{throttled.url}/api/v1/alerts"
    statuses = [httpx.get(url, headers=auth(f"mt_guess_{n}")).status_code for n in range(10)]
    refused = httpx.get(url, headers=auth("mt_another_guess"))

    assert statuses == [401] * 6 + [429] * 4, "each made-up token is a failure of the network"
    assert refused.json()["detail"]["rule"] == "rate.limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert httpx.get(f"{throttled.url}/healthz").status_code == 200, "no token, no limit"


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
