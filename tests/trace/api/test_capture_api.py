"""The whole path through a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from independent_checker import check_url
from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.identifiers import digital_link_path
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
    chain.server.wait_for_checkpoint(chain.server.leaves())
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
        GTIN, serial, lot=LOT, expiry=EXPIRY, event_time=an_hour_ago()
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


# --- the full lifecycle: aggregation, places, QA, returns, final events ---------------------


def new_sscc() -> str:
    """A fresh SSCC in the manufacturer's company prefix (extension digit 3)."""
    return with_check_digit("39521234" + f"{secrets.randbelow(10**9):09d}")


def signed(member: Enrolled, kind: str, **fields: Any) -> dict[str, Any]:
    """An event of any type, signed by ``member``'s station at its GLN."""
    station = member.station
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": fields.pop("event_time", None) or now(),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def units(*serials: str) -> list[dict[str, str]]:
    return [{"gtin": GTIN, "serial": s} for s in serials]


def palletise(chain: Chain, serials: Sequence[str]) -> tuple[str, list[str]]:
    """Commission units, pack them two per case and the cases onto one pallet."""
    chain.commission(*serials)
    cases = [new_sscc() for _ in range(0, len(serials), 2)]
    pallet = new_sscc()
    maker = chain.maker
    maker.api.capture(
        [
            *(
                signed(maker, "pack", sscc=case, children=units(*serials[2 * i : 2 * i + 2]))
                for i, case in enumerate(cases)
            ),
            signed(maker, "pack", sscc=pallet, children=[{"sscc": c} for c in cases]),
        ]
    )
    return pallet, cases


def unit_state(chain: Chain, serial: str) -> dict[str, Any]:
    answer = httpx.get(chain.server.url + digital_link_path(GTIN, serial), headers=JSON)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_pallet_moves_its_units_and_each_unit_verifies_independently(chain: Chain) -> None:
    serials = [new_serial() for _ in range(4)]
    pallet, cases = palletise(chain, serials)
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    fridge = with_check_digit("952567800001")

    maker.api.capture([signed(maker, "ship", sscc=pallet, destination_gln=hub.gln)])
    assert {unit_state(chain, s)["unit"]["state"] for s in serials} == {"in_transit"}
    hub.api.capture(
        [
            signed(hub, "receive", sscc=pallet),
            signed(hub, "unpack", sscc=pallet),
            signed(hub, "unpack", sscc=cases[0], children=units(serials[0])),
            signed(hub, "store", gtin=GTIN, serial=serials[0], location_gln=fridge),
            signed(hub, "ship", gtin=GTIN, serial=serials[0], destination_gln=pharmacy.gln),
        ]
    )
    pharmacy.api.capture(
        [
            signed(pharmacy, "receive", gtin=GTIN, serial=serials[0]),
            signed(pharmacy, "dispense", gtin=GTIN, serial=serials[0]),
        ]
    )

    answer = unit_state(chain, serials[0])
    assert answer["unit"]["state"] == "dispensed"
    assert [e["type"] for e in answer["events"]] == [
        "commission", "pack", "pack", "ship", "receive", "unpack", "unpack", "store", "ship",
        "receive", "dispense",
    ]  # fmt: skip
    still_packed = unit_state(chain, serials[1])
    assert (still_packed["unit"]["state"], still_packed["unit"]["holder"]["gln"]) == (
        "received",
        hub.gln,
    )
    chain.server.wait_for_checkpoint(chain.server.leaves())
    url = chain.server.url + digital_link_path(GTIN, serials[0], lot=LOT)
    checks = check_url(url)
    assert [c.status for c in checks] == ["ok"] * 11, checks


def test_quarantine_is_shown_and_blocks_shipping_until_released(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    maker = chain.maker
    maker.api.capture([signed(maker, "quarantine", gtin=GTIN, serial=serial)])
    answer = unit_state(chain, serial)
    assert (answer["verdict"], answer["unit"]["state"]) == ("quarantined", "commissioned")

    error = refused(
        chain,
        lambda: maker.api.capture([maker.station.ship(GTIN, serial, to=chain.hub.gln)]),
    )
    assert (error.status, error.rule) == (409, "custody.quarantined")
    maker.api.capture([signed(maker, "release", gtin=GTIN, serial=serial)])
    maker.api.capture([maker.station.ship(GTIN, serial, to=chain.hub.gln)])
    assert unit_state(chain, serial)["verdict"] == "genuine"


@pytest.mark.parametrize(
    ("kind", "state"),
    [("destroy", "destroyed"), ("export", "exported"), ("decommission", "decommissioned")],
)
def test_final_events_end_a_units_life(chain: Chain, kind: str, state: str) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy = chain.pharmacy
    pharmacy.api.capture([signed(pharmacy, kind, gtin=GTIN, serial=serial)])
    assert unit_state(chain, serial)["unit"]["state"] == state
    error = refused(chain, lambda: pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)]))
    assert (error.status, error.rule) == (409, "custody.final_state")


def test_a_return_travels_back_to_the_supplier(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy, hub = chain.pharmacy, chain.hub
    pharmacy.api.capture(
        [signed(pharmacy, "return", gtin=GTIN, serial=serial, destination_gln=hub.gln)]
    )
    assert unit_state(chain, serial)["unit"]["state"] == "returned"
    hub.api.capture([hub.station.receive(GTIN, serial)])
    assert unit_state(chain, serial)["unit"]["holder"]["gln"] == hub.gln


def test_a_retried_pallet_move_returns_its_first_receipt(chain: Chain) -> None:
    pallet, _ = palletise(chain, [new_serial() for _ in range(2)])
    ship = signed(chain.maker, "ship", sscc=pallet, destination_gln=chain.hub.gln)
    first = chain.maker.api.capture([ship])
    before = chain.server.snapshot()
    again = chain.maker.api.capture([ship])
    assert chain.server.snapshot() == before
    assert first[0]["units"] == 2
    assert again == [{**first[0], "duplicate": True, "units": None}]  # the count: first receipt


@pytest.mark.parametrize(
    ("scenario", "status", "rule"),
    [
        ("ship_a_packed_unit", 409, "custody.packed"),
        ("pack_what_you_do_not_hold", 409, "custody.not_holder"),
        ("pack_a_packed_unit", 409, "custody.already_packed"),
        ("unpack_what_is_not_inside", 409, "custody.not_in_container"),
        ("receive_a_pallet_not_shipped_to_you", 409, "custody.not_shipped_to_you"),
        ("release_without_quarantine", 409, "custody.not_quarantined"),
        ("store_what_you_do_not_hold", 409, "custody.not_holder"),
        ("dispense_a_case", 422, "event.needs_unit"),
        ("event_in_the_far_future", 422, "capture.future_event"),
        ("bad_sscc_check_digit", 422, "gs1.bad_check_digit"),
        ("second_move_in_the_batch_conflicts", 409, "custody.not_holder"),
    ],
)
def test_lifecycle_refusals_name_their_rule_and_change_nothing(
    chain: Chain, scenario: str, status: int, rule: str
) -> None:
    action = LIFECYCLE_SCENARIOS[scenario](chain)
    error = refused(chain, action)
    assert (error.status, error.rule) == (status, rule), error


def _ship_a_packed_unit(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    palletise(chain, [serial, new_serial()])
    ship = chain.maker.station.ship(GTIN, serial, to=chain.hub.gln)
    return lambda: chain.maker.api.capture([ship])


def _pack_what_you_do_not_hold(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    pack = signed(chain.hub, "pack", sscc=new_sscc(), children=units(serial))
    return lambda: chain.hub.api.capture([pack])


def _pack_a_packed_unit(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    palletise(chain, [serial, new_serial()])
    pack = signed(chain.maker, "pack", sscc=new_sscc(), children=units(serial))
    return lambda: chain.maker.api.capture([pack])


def _unpack_what_is_not_inside(chain: Chain) -> Callable[[], object]:
    pallet, _ = palletise(chain, [new_serial(), new_serial()])
    stranger = new_serial()
    chain.commission(stranger)
    unpack = signed(chain.maker, "unpack", sscc=pallet, children=units(stranger))
    return lambda: chain.maker.api.capture([unpack])


def _receive_a_pallet_not_shipped_to_you(chain: Chain) -> Callable[[], object]:
    pallet, _ = palletise(chain, [new_serial(), new_serial()])
    chain.maker.api.capture(
        [signed(chain.maker, "ship", sscc=pallet, destination_gln=chain.hub.gln)]
    )
    receive = signed(chain.pharmacy, "receive", sscc=pallet)
    return lambda: chain.pharmacy.api.capture([receive])


def _release_without_quarantine(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    release = signed(chain.maker, "release", gtin=GTIN, serial=serial)
    return lambda: chain.maker.api.capture([release])


def _store_what_you_do_not_hold(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    store = signed(chain.hub, "store", gtin=GTIN, serial=serial)
    return lambda: chain.hub.api.capture([store])


def _dispense_a_case(chain: Chain) -> Callable[[], object]:
    dispense = signed(chain.pharmacy, "dispense", sscc=new_sscc())
    return lambda: chain.pharmacy.api.capture([dispense])


def _event_in_the_far_future(chain: Chain) -> Callable[[], object]:
    future = chain.maker.station.commission(
        GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time="2999-01-01T00:00:00Z"
    )
    return lambda: chain.maker.api.capture([future])


def _bad_sscc_check_digit(chain: Chain) -> Callable[[], object]:
    sscc = new_sscc()
    bad = sscc[:-1] + str((int(sscc[-1]) + 1) % 10)
    serial = new_serial()
    chain.commission(serial)
    pack = signed(chain.maker, "pack", sscc=bad, children=units(serial))
    return lambda: chain.maker.api.capture([pack])


def _second_move_in_the_batch_conflicts(chain: Chain) -> Callable[[], object]:
    serial = new_serial()
    chain.commission(serial)
    maker = chain.maker
    batch = [
        maker.station.ship(GTIN, serial, to=chain.hub.gln),
        maker.station.ship(GTIN, serial, to=chain.pharmacy.gln),
    ]
    return lambda: maker.api.capture(batch)


LIFECYCLE_SCENARIOS: dict[str, Callable[[Chain], Callable[[], object]]] = {
    "ship_a_packed_unit": _ship_a_packed_unit,
    "pack_what_you_do_not_hold": _pack_what_you_do_not_hold,
    "pack_a_packed_unit": _pack_a_packed_unit,
    "unpack_what_is_not_inside": _unpack_what_is_not_inside,
    "receive_a_pallet_not_shipped_to_you": _receive_a_pallet_not_shipped_to_you,
    "release_without_quarantine": _release_without_quarantine,
    "store_what_you_do_not_hold": _store_what_you_do_not_hold,
    "dispense_a_case": _dispense_a_case,
    "event_in_the_far_future": _event_in_the_far_future,
    "bad_sscc_check_digit": _bad_sscc_check_digit,
    "second_move_in_the_batch_conflicts": _second_move_in_the_batch_conflicts,
}


def an_hour_ago() -> str:
    """A time inside the replay window, other than now (so that the event differs)."""
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
