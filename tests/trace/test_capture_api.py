"""The whole path through a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from independent_checker import check_url
from medtrace.demo import GTIN, with_check_digit
from medtrace.identifiers import digital_link_path
from medtrace.scanners.errors import CaptureRefused
from medtrace.scanners.station import Station
from support.chain import EXPIRY, LOT, Chain, new_serial

JSON = {"Accept": "application/json"}


def refused(chain: Chain, action: Callable[[], object]) -> CaptureRefused:
    """Run a request that must be refused, and prove it changed nothing."""
    before = chain.server.snapshot()
    with pytest.raises(CaptureRefused) as caught:
        action()
    assert chain.server.snapshot() == before
    return caught.value


def test_every_event_of_a_dispensed_unit_verifies_independently(chain: Chain) -> None:
    serials = [new_serial() for _ in range(3)]
    chain.to_pharmacy(*serials)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, serials[0])])
    chain.server.wait_for_checkpoint(chain.server.snapshot()[0])
    url = chain.server.url + digital_link_path(GTIN, serials[0], lot=LOT)

    checks = check_url(url)

    assert [c.status for c in checks] == ["ok"] * 6, checks
    answer = httpx.get(url, headers=JSON).json()
    assert answer["verdict"] == "genuine"
    assert answer["unit"]["state"] == "dispensed"
    assert [e["type"] for e in answer["events"]] == [
        "commission",
        "ship",
        "receive",
        "ship",
        "receive",
        "dispense",
    ]
    assert answer["events"][-1]["participant"]["role"] == "pharmacy"


def test_a_retry_returns_the_first_receipt_and_writes_nothing(chain: Chain) -> None:
    serial = new_serial()
    envelope = chain.maker.station.commission(GTIN, serial, lot=LOT, expiry=EXPIRY)
    first = chain.maker.api.capture([envelope])
    before = chain.server.snapshot()

    again = chain.maker.api.capture([envelope, envelope])

    assert chain.server.snapshot() == before
    assert [r["leaf_index"] for r in again] == [first[0]["leaf_index"]] * 2
    assert all(r["duplicate"] for r in again)
    assert first[0]["duplicate"] is False


def test_a_batch_is_all_or_nothing_and_names_the_refused_envelope(chain: Chain) -> None:
    held_by_maker = new_serial()
    chain.commission(held_by_maker)
    fresh = new_serial()
    batch = [
        chain.maker.station.commission(GTIN, fresh, lot=LOT, expiry=EXPIRY),
        chain.maker.station.commission(GTIN, held_by_maker, lot=LOT, expiry=EXPIRY),
    ]
    error = refused(chain, lambda: chain.maker.api.capture(batch))
    assert (error.status, error.rule, error.index) == (409, "custody.already_commissioned", 1)
    answer = httpx.get(chain.server.url + digital_link_path(GTIN, fresh), headers=JSON)
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("scenario", "status", "rule"),
    [
        ("commission_twice", 409, "custody.already_commissioned"),
        ("ship_not_held", 409, "custody.not_holder"),
        ("receive_not_shipped_to_you", 409, "custody.not_shipped_to_you"),
        ("move_after_dispense", 409, "custody.final_state"),
        ("dispense_at_distributor", 409, "custody.not_a_pharmacy"),
        ("commission_outside_prefix", 409, "custody.outside_company_prefix"),
        ("commission_by_distributor", 409, "custody.not_a_manufacturer"),
        ("ship_to_unknown_gln", 409, "custody.unknown_destination"),
        ("event_at_another_gln", 409, "custody.wrong_location"),
        ("unknown_station", 403, "station.unknown"),
        ("station_of_another_participant", 403, "station.not_yours"),
        ("tampered_event", 403, "signature.invalid"),
        ("bad_gtin_check_digit", 422, "gs1.bad_check_digit"),
        ("serial_outside_set_82", 422, "gs1.bad_character"),
    ],
)
def test_refusals_name_their_rule_and_change_nothing(
    chain: Chain, scenario: str, status: int, rule: str
) -> None:
    action = SCENARIOS[scenario](chain)
    error = refused(chain, action)
    assert (error.status, error.rule) == (status, rule), error


def _commission_twice(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    again = chain.maker.station.commission(
        GTIN, serial, lot=LOT, expiry=EXPIRY, event_time="2026-01-01T00:00:00Z"
    )
    return lambda: chain.maker.api.capture([again])


def _ship_not_held(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    return lambda: chain.hub.api.capture(
        [chain.hub.station.ship(GTIN, serial, to=chain.pharmacy.gln)]
    )


def _receive_not_shipped_to_you(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    chain.maker.api.capture([chain.maker.station.ship(GTIN, serial, to=chain.hub.gln)])
    return lambda: chain.pharmacy.api.capture([chain.pharmacy.station.receive(GTIN, serial)])


def _move_after_dispense(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.to_pharmacy(serial)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, serial)])
    return lambda: chain.pharmacy.api.capture(
        [chain.pharmacy.station.ship(GTIN, serial, to=chain.hub.gln)]
    )


def _dispense_at_distributor(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    chain.maker.api.capture([chain.maker.station.ship(GTIN, serial, to=chain.hub.gln)])
    chain.hub.api.capture([chain.hub.station.receive(GTIN, serial)])
    return lambda: chain.hub.api.capture([chain.hub.station.dispense(GTIN, serial)])


def _commission_outside_prefix(chain: Chain) -> Callable[[], object]:
    foreign = "0" + with_check_digit("952999900011")
    envelope = chain.maker.station.commission(foreign, new_serial(), lot=LOT, expiry=EXPIRY)
    return lambda: chain.maker.api.capture([envelope])


def _commission_by_distributor(chain: Chain) -> Callable[[], object]:
    envelope = chain.hub.station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    return lambda: chain.hub.api.capture([envelope])


def _ship_to_unknown_gln(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    nowhere = with_check_digit("952000077777")
    return lambda: chain.maker.api.capture([chain.maker.station.ship(GTIN, serial, to=nowhere)])


def _event_at_another_gln(chain: Chain) -> Callable[[], object]:
    elsewhere = Station(chain.maker.station.station_id, chain.hub.gln, chain.maker.station.key)
    envelope = elsewhere.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    return lambda: chain.maker.api.capture([envelope])


def _unknown_station(chain: Chain) -> Callable[[], object]:
    ghost = Station("ghost-9", chain.maker.gln, Ed25519PrivateKey.generate())
    envelope = ghost.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    return lambda: chain.maker.api.capture([envelope])


def _station_of_another_participant(chain: Chain) -> Callable[[], object]:
    envelope = chain.maker.station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    return lambda: chain.hub.api.capture([envelope])


def _tampered_event(chain: Chain) -> Callable[[], object]:
    envelope = chain.maker.station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    envelope["event"]["lot"] = "LOT43"
    return lambda: chain.maker.api.capture([envelope])


def _bad_gtin_check_digit(chain: Chain) -> Callable[[], object]:
    bad = GTIN[:-1] + str((int(GTIN[-1]) + 1) % 10)
    envelope = chain.maker.station.commission(bad, new_serial(), lot=LOT, expiry=EXPIRY)
    return lambda: chain.maker.api.capture([envelope])


def _serial_outside_set_82(chain: Chain) -> Callable[[], object]:
    envelope = chain.maker.station.commission(GTIN, "SER IAL#1", lot=LOT, expiry=EXPIRY)
    return lambda: chain.maker.api.capture([envelope])


SCENARIOS: dict[str, Callable[[Chain], Callable[[], object]]] = {
    "commission_twice": _commission_twice,
    "ship_not_held": _ship_not_held,
    "receive_not_shipped_to_you": _receive_not_shipped_to_you,
    "move_after_dispense": _move_after_dispense,
    "dispense_at_distributor": _dispense_at_distributor,
    "commission_outside_prefix": _commission_outside_prefix,
    "commission_by_distributor": _commission_by_distributor,
    "ship_to_unknown_gln": _ship_to_unknown_gln,
    "event_at_another_gln": _event_at_another_gln,
    "unknown_station": _unknown_station,
    "station_of_another_participant": _station_of_another_participant,
    "tampered_event": _tampered_event,
    "bad_gtin_check_digit": _bad_gtin_check_digit,
    "serial_outside_set_82": _serial_outside_set_82,
}


@pytest.mark.parametrize(
    ("headers", "body", "status", "rule"),
    [
        ({}, b"[]", 401, "auth.missing_token"),
        ({"Authorization": "Bearer mt_nope"}, b"[]", 401, "auth.invalid_token"),
        (None, b"{not json", 422, "input.invalid"),
        (None, b'{"event": {}}', 422, "input.invalid"),
        (None, b'[{"event": {}, "signature": "x"}]', 422, "input.invalid"),
        (None, b"[]", 422, "capture.empty"),
    ],
)
def test_malformed_requests_get_a_json_detail_and_change_nothing(
    chain: Chain, headers: dict[str, str] | None, body: bytes, status: int, rule: str
) -> None:
    auth = {"Authorization": f"Bearer {chain.maker.token}"} if headers is None else headers
    before = chain.server.snapshot()
    response = httpx.post(
        f"{chain.server.url}/api/v1/capture",
        content=body,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["detail"]["rule"]) == (status, rule)
    assert response.json()["detail"]["message"]
    assert chain.server.snapshot() == before
