"""Fuzzing the capture endpoints of a live server (SQLite and PostgreSQL) with hypothesis:
whatever the body, the answer is never a 5xx, and a refused body writes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medtrace.errors import InvalidInput
from medtrace.protocol.envelope import sign_event
from support.chain import Chain

SHORT = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
GS1ISH = st.sampled_from(
    [
        "09521234000112", "9521234000006", "9525678000004", "395212340000000014",
        "urn:epc:id:sgtin:9521234.000011.S1", "https://id.gs1.org/01/09521234000112/21/S1",
        "urn:epc:id:sscc:9521234.3000000001", "2026-11-22T10:00:00Z", "2999-01-01T00:00:00Z",
        "commission", "pack", "ship", "receive", "shipping", "receiving", "packing", "ADD",
        "OBSERVE", "", "S1", "\u0000", "1" * 40,
    ]
)  # fmt: skip
VALUES = GS1ISH | JSON
EVENT_KEYS = st.sampled_from(
    ["type", "gtin", "serial", "sscc", "lot", "expiry", "gln", "destination_gln",
     "location_gln", "children", "event_time", "station_id", "extra"]
)  # fmt: skip
EPCIS_KEYS = st.sampled_from(
    ["type", "eventTime", "eventTimeZoneOffset", "action", "bizStep", "disposition", "epcList",
     "parentID", "childEPCs", "readPoint", "bizLocation", "destinationList", "ilmd"]
)  # fmt: skip


def _post(chain: Chain, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        chain.server.url + path,
        content=body,
        headers={
            "Authorization": f"Bearer {chain.maker.token}",
            "Content-Type": "application/json",
        },
        timeout=60,
    )


def _no_5xx_and_nothing_written_on_refusal(chain: Chain, path: str, body: bytes) -> None:
    before = chain.server.snapshot()
    response = _post(chain, path, body)
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        assert response.json()["detail"]["rule"]
        assert chain.server.snapshot() == before


@SHORT
@given(events=st.lists(st.dictionaries(EVENT_KEYS, VALUES, max_size=9), min_size=1, max_size=3))
def test_signed_envelopes_of_any_shape_never_get_a_5xx(
    chain: Chain, events: list[dict[str, Any]]
) -> None:
    station = chain.maker.station
    try:
        envelopes = [sign_event(e, station_id=station.station_id, key=station.key) for e in events]
        body = json.dumps(envelopes).encode()
    except InvalidInput:  # a station cannot sign it (e.g. an integer beyond 2**53)
        return
    _no_5xx_and_nothing_written_on_refusal(chain, "/api/v1/capture", body)


@SHORT
@given(body=JSON)
def test_any_json_body_to_capture_never_gets_a_5xx(chain: Chain, body: Any) -> None:
    _no_5xx_and_nothing_written_on_refusal(chain, "/api/v1/capture", json.dumps(body).encode())


@SHORT
@given(events=st.lists(st.dictionaries(EPCIS_KEYS, VALUES, max_size=10), min_size=1, max_size=3))
def test_epcis_documents_of_any_shape_never_get_a_5xx(
    chain: Chain, events: list[dict[str, Any]]
) -> None:
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "epcisBody": {"eventList": events},
    }
    _no_5xx_and_nothing_written_on_refusal(chain, "/epcis/capture", json.dumps(document).encode())
