"""Issue 18, item 9: the inputs that answered 500, replayed on a live server (SQLite and
PostgreSQL). Each is now refused with a 4xx naming its rule, and changes nothing.

The numbers and times are the extremes the store or Python cannot hold: a value beyond a
BIGINT (2^63), a decimal beyond Python's conversion limit (5 000 digits), infinity, a time
that leaves year 1..9999 when made UTC, a quantity beyond PostgreSQL's 32-bit INTEGER.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from medtrace.demo import GTIN
from medtrace.protocol.envelope import sign_event
from support import fhir, lots
from support.chain import EXPIRY, LOT, Chain, ago, new_serial

BIGINT_PLUS_ONE = str(2**63)
HUGE = "9" * 5_000


def _get(chain: Chain, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or chain.maker.token}"}
    return httpx.get(chain.server.url + path, headers=headers, timeout=30)


def _refused(response: httpx.Response, status: int, rule: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["detail"]["rule"] == rule, response.text


def _fhir_refused(response: httpx.Response, rule: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == rule, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reorder-plans?lead_time_days=inf",
        "/api/v1/reorder-plans.csv?lead_time_days=inf",
        "/api/v1/reorder-plans?review_period_days=inf",
        "/api/v1/reorder-plans?review_period_days=nan",
        "/api/v1/reorder-plans?service_level=nan",
        "/api/v1/reorder-plans?lead_time_days=1e400",
    ],
)
def test_infinite_planning_days_are_refused(chain: Chain, path: str) -> None:
    before = chain.server.snapshot()
    _refused(_get(chain, path, chain.pharmacy.token), 422, "input.invalid")
    assert chain.server.snapshot() == before


@pytest.mark.parametrize("token", [str(2**64), BIGINT_PLUS_ONE, HUGE])
def test_an_epcis_page_token_beyond_a_bigint_is_refused(chain: Chain, token: str) -> None:
    _refused(_get(chain, f"/epcis/events?nextPageToken={token}"), 422, "epcis.bad_token")


@pytest.mark.parametrize(
    "query",
    [
        f"start={BIGINT_PLUS_ONE}&end={2**63 + 1}",
        f"start=0&end={BIGINT_PLUS_ONE}",
        f"start={HUGE}&end={HUGE}1",
    ],
)
def test_ledger_leaves_beyond_a_bigint_are_refused(chain: Chain, query: str) -> None:
    _refused(_get(chain, f"/api/v1/ledger/leaves?{query}"), 422, "input.invalid")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ledger/proof/inclusion?index=0&size=" + BIGINT_PLUS_ONE,
        "/api/v1/ledger/proof/consistency?from=1&to=" + BIGINT_PLUS_ONE,
    ],
)
def test_proof_sizes_beyond_a_bigint_are_refused(chain: Chain, path: str) -> None:
    _refused(_get(chain, path), 422, "input.invalid")


@pytest.mark.parametrize(
    "path",
    [
        "/log/tile/0/" + "x999/" * 7 + "999",
        "/log/tile/entries/" + "x999/" * 7 + "999",
        "/log/tile/0/" + "x999/" * 2_000 + "999",
        "/log/tile/0/x036/x028/x797/x018/x963/968",  # 2^63 // 256 + 1: its leaves overflow
    ],
)
def test_a_tile_index_beyond_any_log_is_refused(chain: Chain, path: str) -> None:
    _refused(_get(chain, path), 422, "ledger.bad_tile")


def test_the_largest_tile_index_is_only_not_found(chain: Chain) -> None:
    _refused(_get(chain, "/log/tile/0/x036/x028/x797/x018/x963/967"), 404, "ledger.no_tile")


@pytest.mark.parametrize("offset", [BIGINT_PLUS_ONE, str(2**64), HUGE])
def test_a_fhir_offset_beyond_a_bigint_is_refused(chain: Chain, offset: str) -> None:
    _fhir_refused(_get(chain, f"/fhir/Device?_offset={offset}"), "fhir.bad_paging")


@pytest.mark.parametrize(
    "when", ["9999-12-31", "le9999-12-31", "0001-01-01", "9999-12-31T23:59:59-12:00"]
)
def test_a_fhir_date_at_the_ends_of_the_calendar_is_refused(chain: Chain, when: str) -> None:
    query = httpx.QueryParams(whenhandedover=when)
    response = _get(chain, f"/fhir/MedicationDispense?{query}")
    _fhir_refused(response, "fhir.bad_date")


@pytest.mark.parametrize("expiry", ["2030", "2030-01"])
def test_a_partial_fhir_expiry_is_refused_by_rule(chain: Chain, expiry: str) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    resource = fhir.dispense_of(serial)
    resource["contained"][0]["batch"]["expirationDate"] = expiry
    before = chain.server.snapshot()
    response = httpx.post(
        f"{chain.server.url}/fhir/MedicationDispense",
        content=json.dumps(resource),
        headers={
            "Authorization": f"Bearer {chain.pharmacy.token}",
            "Content-Type": "application/fhir+json",
        },
        timeout=30,
    )
    _fhir_refused(response, "fhir.partial_expiry")
    assert chain.server.snapshot() == before


def _contained(resource: dict[str, Any], key: str, value: object) -> None:
    resource["contained"][0][key] = value


def _batch(resource: dict[str, Any], key: str, value: object) -> None:
    resource["contained"][0]["batch"][key] = value


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda r: _contained(r, "resourceType", "x"), "fhir.unsupported_element"),
        (lambda r: _contained(r, "resourceType", None), "fhir.unsupported_element"),
        (lambda r: _contained(r, "resourceType", 0), "fhir.unsupported_element"),
        (lambda r: _batch(r, "expirationDate", 0), "fhir.partial_expiry"),
        (lambda r: _batch(r, "expirationDate", 1.5), "fhir.partial_expiry"),
        (lambda r: r.update(whenHandedOver="2030"), None),
        (lambda r: r.update(whenHandedOver="9999-12-31T23:59:59-12:00"), None),
    ],
)
def test_a_dispense_the_fhir_models_cannot_read_is_refused(
    chain: Chain, change: Any, rule: str | None
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    resource = fhir.dispense_of(serial)
    change(resource)
    before = chain.server.snapshot()
    response = httpx.post(
        f"{chain.server.url}/fhir/MedicationDispense",
        content=json.dumps(resource),
        headers={
            "Authorization": f"Bearer {chain.pharmacy.token}",
            "Content-Type": "application/fhir+json",
        },
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert rule is None or response.json()["issue"][0]["details"]["coding"][0]["code"] == rule
    assert chain.server.snapshot() == before


def _capture(chain: Chain, event: dict[str, Any]) -> httpx.Response:
    station = chain.maker.station
    envelope = sign_event(event, station_id=station.station_id, key=station.key)
    return httpx.post(
        f"{chain.server.url}/api/v1/capture",
        json=[envelope],
        headers={"Authorization": f"Bearer {chain.maker.token}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    "event_time",
    [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        1_700_000_000,
        0,
        "2030",  # digits: pydantic would read them as Unix seconds
        "2030-01",
    ],
)
def test_a_capture_at_an_impossible_time_is_refused(chain: Chain, event_time: object) -> None:
    station = chain.maker.station
    event = {
        "type": "commission",
        "gtin": GTIN,
        "serial": new_serial(),
        "lot": LOT,
        "expiry": EXPIRY.isoformat(),
        "gln": station.gln,
        "event_time": event_time,
        "station_id": station.station_id,
    }
    before = chain.server.snapshot()
    response = _capture(chain, event)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]["rule"], response.text
    assert chain.server.snapshot() == before


@pytest.mark.parametrize("expiry", ["9999-12-31", "0001-01-01"])
def test_a_commission_with_an_expiry_at_the_ends_of_the_calendar_is_refused(
    chain: Chain, expiry: str
) -> None:
    station = chain.maker.station
    event = station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time=ago(1))
    before = chain.server.snapshot()
    response = _capture(chain, {**event["event"], "expiry": expiry})
    assert 400 <= response.status_code < 500, response.text
    assert chain.server.snapshot() == before


@pytest.mark.parametrize("quantity", [2**31, 2**53 - 1])  # a station signs up to 2^53 - 1
def test_a_lot_quantity_beyond_an_integer_column_is_refused_on_both_backends(
    chain: Chain, quantity: int
) -> None:
    files = {"report.pdf": lots.pdf("inspection")}
    envelope = lots.record(chain.maker.station, "BIGLOT", 1, files, quantity=quantity)
    before = chain.server.snapshot()
    response = lots.post(chain.server.url, chain.maker.token, envelope, files)
    _refused(response, 422, "lot.invalid")
    assert chain.server.snapshot() == before
    assert _get(chain, f"/api/v1/lots/{GTIN}/BIGLOT").status_code == 404


def test_the_largest_lot_quantity_an_integer_holds_is_accepted(chain: Chain) -> None:
    files = {"report.pdf": lots.pdf("inspection")}
    envelope = lots.record(chain.maker.station, "MAXLOT", 1, files, quantity=2**31 - 1)
    response = lots.post(chain.server.url, chain.maker.token, envelope, files)
    assert response.status_code == 201, response.text
    assert response.json()["quantity"] == 2**31 - 1


def test_a_portal_log_in_with_a_nul_in_the_address_is_refused(chain: Chain) -> None:
    with httpx.Client(base_url=chain.server.url, timeout=30) as client:
        page = client.get("/portal/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf, page[:500]
        before = chain.server.snapshot()
        response = client.post(
            "/portal/login",
            data={"csrf": csrf[1], "email": "a\x00@example.org", "password": "x"},
        )
    assert response.status_code == 401, response.text
    assert "portal.bad_credentials" in response.text
    assert chain.server.snapshot() == before
