"""The custody state machine, rule by rule, without storage."""

from __future__ import annotations

import datetime as dt

import pytest

from medtrace.custody import Actor, Custody, apply_event
from medtrace.errors import CustodyViolation, InvalidInput
from medtrace.models import EventType, Role, UnitState
from medtrace.schemas import SignedEvent

GTIN = "09521234000112"
MAKER = Actor("9521234000006", Role.MANUFACTURER, "9521234")
HUB = Actor("9525678000004", Role.DISTRIBUTOR)
PHARMACY = Actor("9529012000002", Role.PHARMACY)
EXPIRY = dt.date(2028, 1, 31)


def event(kind: EventType, actor: Actor, **fields: object) -> SignedEvent:
    return SignedEvent.model_validate(
        {
            "type": kind,
            "gtin": GTIN,
            "serial": "S1",
            "gln": actor.gln,
            "event_time": "2026-11-22T10:00:00Z",
            "station_id": "st-1",
            **fields,
        }
    )


def held(state: UnitState, holder: Actor, destination: str | None = None) -> Custody:
    return Custody(
        lot="L1", expiry=EXPIRY, state=state, holder_gln=holder.gln, destination_gln=destination
    )


def test_the_happy_path_moves_custody_step_by_step() -> None:
    unit = apply_event(
        event(EventType.COMMISSION, MAKER, lot="L1", expiry="2028-01-31"), None, MAKER
    )
    assert unit == held(UnitState.COMMISSIONED, MAKER)
    unit = apply_event(event(EventType.SHIP, MAKER, destination_gln=HUB.gln), unit, MAKER)
    assert unit == held(UnitState.IN_TRANSIT, MAKER, HUB.gln)
    unit = apply_event(event(EventType.RECEIVE, HUB), unit, HUB)
    assert unit == held(UnitState.RECEIVED, HUB)
    unit = apply_event(event(EventType.SHIP, HUB, destination_gln=PHARMACY.gln), unit, HUB)
    unit = apply_event(event(EventType.RECEIVE, PHARMACY), unit, PHARMACY)
    unit = apply_event(event(EventType.DISPENSE, PHARMACY), unit, PHARMACY)
    assert unit == held(UnitState.DISPENSED, PHARMACY)


@pytest.mark.parametrize(
    ("kind", "actor", "current", "fields", "rule"),
    [
        (
            EventType.COMMISSION,
            MAKER,
            held(UnitState.COMMISSIONED, MAKER),
            {"lot": "L1", "expiry": "2028-01-31"},
            "custody.already_commissioned",
        ),
        (
            EventType.COMMISSION,
            HUB,
            None,
            {"lot": "L1", "expiry": "2028-01-31"},
            "custody.not_a_manufacturer",
        ),
        (
            EventType.SHIP,
            HUB,
            held(UnitState.COMMISSIONED, MAKER),
            {"destination_gln": PHARMACY.gln},
            "custody.not_holder",
        ),
        (
            EventType.SHIP,
            MAKER,
            held(UnitState.IN_TRANSIT, MAKER, HUB.gln),
            {"destination_gln": PHARMACY.gln},
            "custody.not_holder",
        ),
        (
            EventType.SHIP,
            MAKER,
            held(UnitState.COMMISSIONED, MAKER),
            {"destination_gln": MAKER.gln},
            "custody.same_location",
        ),
        (
            EventType.RECEIVE,
            PHARMACY,
            held(UnitState.IN_TRANSIT, MAKER, HUB.gln),
            {},
            "custody.not_shipped_to_you",
        ),
        (EventType.RECEIVE, HUB, held(UnitState.RECEIVED, HUB), {}, "custody.not_shipped_to_you"),
        (EventType.DISPENSE, HUB, held(UnitState.RECEIVED, HUB), {}, "custody.not_a_pharmacy"),
        (
            EventType.DISPENSE,
            PHARMACY,
            held(UnitState.IN_TRANSIT, HUB, PHARMACY.gln),
            {},
            "custody.not_holder",
        ),
        (
            EventType.DISPENSE,
            PHARMACY,
            held(UnitState.DISPENSED, PHARMACY),
            {},
            "custody.final_state",
        ),
        (EventType.RECEIVE, HUB, None, {}, "custody.unknown_unit"),
        (
            EventType.RECEIVE,
            HUB,
            held(UnitState.IN_TRANSIT, MAKER, HUB.gln),
            {"lot": "L2"},
            "custody.unit_mismatch",
        ),
    ],
)
def test_each_rule_refuses_with_its_name(
    kind: EventType, actor: Actor, current: Custody | None, fields: dict[str, str], rule: str
) -> None:
    with pytest.raises(CustodyViolation) as refused:
        apply_event(event(kind, actor, **fields), current, actor)
    assert refused.value.rule == rule


def test_an_event_signed_for_another_place_is_refused() -> None:
    with pytest.raises(CustodyViolation, match="belongs to"):
        apply_event(
            event(EventType.RECEIVE, HUB), held(UnitState.IN_TRANSIT, MAKER, HUB.gln), PHARMACY
        )


def test_a_gtin_outside_the_company_prefix_cannot_be_commissioned() -> None:
    foreign = event(
        EventType.COMMISSION, MAKER, lot="L1", expiry="2028-01-31", gtin="09529999000118"
    )
    with pytest.raises(CustodyViolation, match="outside company prefix 9521234"):
        apply_event(foreign, None, MAKER)


def test_commissioning_needs_lot_and_expiry() -> None:
    with pytest.raises(InvalidInput, match="lot and an expiry"):
        apply_event(event(EventType.COMMISSION, MAKER), None, MAKER)


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"type": "ship"}, "event.destination"),
        ({"destination_gln": HUB.gln}, "event.destination"),
        ({"event_time": "2026-11-22T10:00:00"}, "event.naive_time"),
        ({"gln": "9521234000007"}, "gs1.bad_check_digit"),
        ({"gtin": "9521234000112"}, "gs1.gtin_format"),
    ],
)
def test_a_malformed_event_names_the_problem(fields: dict[str, str], rule: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        event(EventType.RECEIVE, HUB, **fields)
    assert refused.value.rule == rule
