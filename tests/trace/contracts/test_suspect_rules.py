"""The suspect and recall rules on their own: pure functions, no storage, no HTTP."""

from __future__ import annotations

import datetime as dt

import pytest

from medtrace.contracts.recall import Holding, RecallNotice, recall_findings
from medtrace.contracts.suspect import (
    Presenter,
    Transit,
    VerifyTally,
    VerifyWatch,
    diverted_receipt,
    impossible_transit,
    on_refusal,
    verified_after_dispense,
    watch_start,
)
from medtrace.custody import ContainerKey, Custody, Diversion, UnitKey
from medtrace.models import EventType, UnitState
from medtrace.models.alerts import AlertKind, Severity
from medtrace.schemas.capture import SignedEvent
from medtrace.services.suspects import place_hash

GTIN = "09521234000112"
PHARMACY = Presenter("9529012000002", "Ruijin Hospital Pharmacy")
OTHER_PHARMACY = "9529012000019"
UNIT = UnitKey(GTIN, "S1")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def event(kind: EventType, **fields: str) -> SignedEvent:
    return SignedEvent.model_validate(
        {"type": kind, "gtin": GTIN, "serial": "S1", "gln": PHARMACY.gln,
         "event_time": "2026-11-22T10:00:00Z", "station_id": "st-1", **fields}
    )  # fmt: skip


def custody(state: UnitState, holder: str = OTHER_PHARMACY) -> Custody:
    return Custody(state=state, holder_gln=holder, lot="L1", expiry=dt.date(2028, 1, 31))


def test_a_serial_never_commissioned_is_suspect_and_names_its_presenter() -> None:
    found = on_refusal(event(EventType.DISPENSE), "custody.unknown_unit", None, PHARMACY)
    assert found is not None
    finding = found.finding
    assert (finding.kind, finding.rule, finding.severity) == (
        AlertKind.SUSPECT,
        "suspect.never_commissioned",
        Severity.CRITICAL,
    )
    assert (finding.gln, finding.gtin, finding.evidence["serial"]) == (PHARMACY.gln, GTIN, "S1")
    assert PHARMACY.name in finding.message
    assert found.units == (), "no unit exists to mark"


@pytest.mark.parametrize("kind", [EventType.DISPENSE, EventType.RECEIVE])
def test_a_dispensed_unit_presented_again_is_suspect_and_marked(kind: EventType) -> None:
    found = on_refusal(event(kind), "custody.final_state", custody(UnitState.DISPENSED), PHARMACY)
    assert found is not None
    assert found.finding.rule == "suspect.after_dispense"
    assert found.finding.evidence["dispensed_by"] == OTHER_PHARMACY
    assert found.units == (UNIT,)


@pytest.mark.parametrize(
    ("kind", "rule", "current"),
    [
        (EventType.DISPENSE, "custody.not_holder", custody(UnitState.IN_TRANSIT)),
        (EventType.RECEIVE, "custody.not_shipped_to_you", custody(UnitState.IN_TRANSIT)),
        (EventType.DISPENSE, "custody.packed", custody(UnitState.PACKED, PHARMACY.gln)),
        (EventType.RECEIVE, "custody.not_shipped_to_you", custody(UnitState.STORED, PHARMACY.gln)),
        (EventType.DISPENSE, "custody.final_state", custody(UnitState.DESTROYED)),
        (EventType.STORE, "custody.final_state", custody(UnitState.DISPENSED)),
        (EventType.DISPENSE, "custody.recalled", custody(UnitState.RECEIVED)),
        (EventType.RECEIVE, "custody.unknown_unit", custody(UnitState.RECEIVED)),
    ],
)
def test_ordinary_refusals_are_not_suspect(kind: EventType, rule: str, current: Custody) -> None:
    assert on_refusal(event(kind), rule, current, PHARMACY) is None


@pytest.mark.parametrize(
    ("kind", "rule", "state"),
    [
        (EventType.DISPENSE, "custody.not_holder", UnitState.STORED),
        (EventType.STORE, "custody.not_holder", UnitState.RECEIVED),
        (EventType.RECEIVE, "custody.not_shipped_to_you", UnitState.COMMISSIONED),
        (EventType.DISPENSE, "custody.packed", UnitState.PACKED),
    ],
)
def test_a_serial_in_another_sites_stock_is_a_clone(
    kind: EventType, rule: str, state: UnitState
) -> None:
    found = on_refusal(event(kind), rule, custody(state), PHARMACY)
    assert found is not None
    finding = found.finding
    assert (finding.rule, finding.severity, finding.gln, finding.lot) == (
        "suspect.clone",
        Severity.CRITICAL,
        PHARMACY.gln,
        "L1",
    )
    assert finding.evidence["held_by"] == OTHER_PHARMACY
    assert finding.evidence["presented_by"] == PHARMACY.gln
    assert PHARMACY.name in finding.message and OTHER_PHARMACY in finding.message
    assert found.units == (UNIT,)


def test_a_diverted_receipt_marks_every_unit_it_moved() -> None:
    units = [UnitKey(GTIN, "A"), UnitKey(GTIN, "B")]
    pallet = ContainerKey("395212340000000021")
    found = diverted_receipt(
        Diversion(pallet, PHARMACY.gln, OTHER_PHARMACY, "9525678000004"), units, [(GTIN, "L1")]
    )
    assert found.units == tuple(units)
    assert (found.finding.rule, found.finding.unit_count, found.finding.lot) == (
        "suspect.not_shipped_to_you",
        2,
        "L1",
    )
    assert f"shipped to {OTHER_PHARMACY}" in found.finding.message
    assert found.finding.dedup_key.endswith(f"{pallet.sscc}:{PHARMACY.gln}")


HUB = "9525678000004"
MINUTE = dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("after_shipment", "receiver", "why"),
    [
        (-MINUTE, PHARMACY.gln, "before it was shipped"),
        (MINUTE / 2, PHARMACY.gln, "30 s after it was shipped (the minimum transit is 60 s)"),
        (-MINUTE, HUB, "before it was shipped"),  # back where it came from: still not before
    ],
)
def test_a_receipt_before_its_shipment_or_too_soon_after_it_is_suspect(
    after_shipment: dt.timedelta, receiver: str, why: str
) -> None:
    pallet = ContainerKey("395212340000000021")
    units = [UnitKey(GTIN, "A"), UnitKey(GTIN, "B")]
    transit = Transit(pallet, HUB, NOW, receiver, NOW + after_shipment)
    found = impossible_transit(transit, units, [(GTIN, "L1")], min_transit=MINUTE)
    assert found is not None
    assert (found.finding.rule, found.finding.gln, found.finding.unit_count) == (
        "suspect.impossible_transit",
        receiver,
        2,
    )
    assert why in found.finding.message
    assert found.finding.evidence["shipped_at"] == NOW.isoformat()
    assert found.finding.evidence["received_at"] == (NOW + after_shipment).isoformat()
    assert found.units == tuple(units)


@pytest.mark.parametrize(
    ("after_shipment", "receiver"),
    [
        (MINUTE, PHARMACY.gln),  # exactly the minimum
        (dt.timedelta(days=2), PHARMACY.gln),
        (dt.timedelta(0), HUB),  # the sender took it back at once: no road between
    ],
)
def test_a_receipt_after_a_possible_transit_is_not_suspect(
    after_shipment: dt.timedelta, receiver: str
) -> None:
    transit = Transit(UNIT, HUB, NOW, receiver, NOW + after_shipment)
    assert impossible_transit(transit, [UNIT], [(GTIN, "L1")], min_transit=MINUTE) is None


WATCH = VerifyWatch(max_requests=4, min_places=3, window=dt.timedelta(hours=1))
DISPENSED = NOW - dt.timedelta(days=2)


def tally(*spec: tuple[int, str], dispensed: dt.datetime = DISPENSED) -> VerifyTally:
    """What the store counts from the hits (minutes before NOW, place) since ``watch_start``."""
    since = watch_start(dispensed, NOW, WATCH)
    recent = [place for minutes, place in spec if NOW - dt.timedelta(minutes=minutes) >= since]
    return VerifyTally(requests=len(recent), places=len(set(recent)))


@pytest.mark.parametrize(
    ("seen", "suspect"),
    [
        (tally((1, "a"), (2, "b"), (3, "c"), (4, "a")), True),
        (tally((1, "a"), (2, "b"), (3, "c")), False),  # too few requests
        (tally((1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "a")), False),  # too few places
        (tally((1, "a"), (2, "b"), (3, "c"), (61, "d")), False),  # one is outside the window
    ],
)
def test_public_verifications_after_dispense_need_both_thresholds(
    seen: VerifyTally, suspect: bool
) -> None:
    found = verified_after_dispense(UNIT, "L1", PHARMACY.gln, DISPENSED, seen, watch=WATCH)
    assert (found is not None) == suspect
    if found is not None:
        assert found.finding.rule == "suspect.verified_after_dispense"
        assert found.finding.evidence["requests"] == 4
        assert found.finding.gln == PHARMACY.gln
        assert found.units == (UNIT,)


def test_verifications_before_dispense_do_not_count() -> None:
    dispensed = NOW - dt.timedelta(minutes=2)
    assert watch_start(dispensed, NOW, WATCH) == dispensed
    seen = tally((1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), dispensed=dispensed)
    assert seen == VerifyTally(requests=2, places=2)
    assert verified_after_dispense(UNIT, "L1", PHARMACY.gln, dispensed, seen, watch=WATCH) is None


def test_a_place_is_a_salted_hash_of_its_network() -> None:
    salt = b"s" * 32
    assert place_hash("203.0.113.5", salt) == place_hash("203.0.113.77", salt)
    assert place_hash("203.0.113.5", salt) != place_hash("203.0.114.5", salt)
    assert place_hash("2001:db8:1:2::1", salt) == place_hash("2001:db8:1:ffff::9", salt)
    assert place_hash("203.0.113.5", salt) != place_hash("203.0.113.5", b"t" * 32)
    digest = place_hash("203.0.113.5", salt)
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")


def test_a_recall_alerts_each_holder_and_each_receiver_once() -> None:
    notice = RecallNotice(
        event_id="e" * 64,
        leaf_index=7,
        gtin=GTIN,
        lot="L1",
        reason="sterility",
        recalled_by="Huaxin Pharmaceutical (9521234000006)",
        recalled_at=NOW,
    )
    findings = recall_findings(
        notice,
        [Holding("9525678000004", "Hub", 3), Holding(PHARMACY.gln, PHARMACY.name, 1, inbound=True)],
    )
    assert [(f.rule, f.gln, f.unit_count) for f in findings] == [
        ("recall.held", "9525678000004", 3),
        ("recall.inbound", PHARMACY.gln, 1),
    ]
    assert all(f.kind is AlertKind.RECALL and f.severity is Severity.CRITICAL for f in findings)
    assert len({f.dedup_key for f in findings}) == 2
    assert "sterility" in findings[0].message and "on their way" in findings[1].message
    assert recall_findings(notice, []) == []
