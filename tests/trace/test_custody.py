"""The custody state machine, rule by rule, without storage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest

from medtrace.custody import (
    Actor,
    ContainerKey,
    Custody,
    Diversion,
    Key,
    ReceiptPolicy,
    UnitKey,
    acting_at,
    apply_event,
)
from medtrace.errors import CustodyViolation, InvalidInput
from medtrace.models import EventType, Role, UnitState
from medtrace.schemas.capture import SignedEvent

GTIN = "09521234000112"
MAKER = Actor("9521234000006", Role.MANUFACTURER, "9521234")
HUB = Actor("9525678000004", Role.DISTRIBUTOR)
PHARMACY = Actor("9529012000002", Role.PHARMACY)
EXPIRY = dt.date(2028, 1, 31)
CASE = "395212340000000014"
PALLET = "395212340000000021"
FRIDGE = "9525678000011"
UNIT = UnitKey(GTIN, "S1")


@dataclass
class World:
    """An in-memory custody view: what the capture service reads from the store."""

    objects: dict[Key, Custody] = field(default_factory=dict)

    def custody(self, key: Key) -> Custody | None:
        return self.objects.get(key)

    def contents(self, sscc: str) -> Sequence[Key]:
        return sorted((k for k, c in self.objects.items() if c.parent_sscc == sscc), key=str)

    def run(self, event: SignedEvent, actor: Actor) -> list[UnitKey]:
        outcome = apply_event(event, self, actor)
        self.objects.update(outcome.changes)
        return outcome.units


def event(kind: EventType, actor: Actor, **fields: object) -> SignedEvent:
    target: dict[str, object] = (
        {"sscc": fields.pop("sscc")} if "sscc" in fields else {"gtin": GTIN, "serial": "S1"}
    )
    return SignedEvent.model_validate(
        {
            "type": kind,
            **target,
            "gln": actor.gln,
            "event_time": "2026-11-22T10:00:00Z",
            "station_id": "st-1",
            **fields,
        }
    )


def held(
    state: UnitState, holder: Actor, destination: str | None = None, **more: object
) -> Custody:
    location = None if state in (UnitState.IN_TRANSIT, UnitState.RETURNED) else holder.gln
    values: dict[str, object] = {
        "lot": "L1",
        "expiry": EXPIRY,
        "state": state,
        "holder_gln": holder.gln,
        "destination_gln": destination,
        "location_gln": location,
        **more,
    }
    return Custody(**values)  # type: ignore[arg-type]


def one(current: Custody | None) -> World:
    return World({UNIT: current} if current else {})


def test_the_happy_path_moves_custody_step_by_step() -> None:
    world = World()
    world.run(event(EventType.COMMISSION, MAKER, lot="L1", expiry="2028-01-31"), MAKER)
    assert world.objects[UNIT] == held(UnitState.COMMISSIONED, MAKER)
    world.run(event(EventType.SHIP, MAKER, destination_gln=HUB.gln), MAKER)
    assert world.objects[UNIT] == held(UnitState.IN_TRANSIT, MAKER, HUB.gln)
    world.run(event(EventType.RECEIVE, HUB), HUB)
    assert world.objects[UNIT] == held(UnitState.RECEIVED, HUB)
    world.run(event(EventType.STORE, HUB, location_gln=FRIDGE), HUB)
    assert world.objects[UNIT] == held(UnitState.STORED, HUB, location_gln=FRIDGE)
    world.run(event(EventType.SHIP, HUB, destination_gln=PHARMACY.gln), HUB)
    world.run(event(EventType.RECEIVE, PHARMACY), PHARMACY)
    world.run(event(EventType.DISPENSE, PHARMACY), PHARMACY)
    assert world.objects[UNIT] == held(UnitState.DISPENSED, PHARMACY)


def test_a_return_goes_back_and_is_received_by_the_supplier() -> None:
    world = one(held(UnitState.RECEIVED, PHARMACY))
    world.run(event(EventType.RETURN, PHARMACY, destination_gln=HUB.gln), PHARMACY)
    assert world.objects[UNIT] == held(UnitState.RETURNED, PHARMACY, HUB.gln)
    world.run(event(EventType.RECEIVE, HUB), HUB)
    assert world.objects[UNIT] == held(UnitState.RECEIVED, HUB)


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (EventType.DESTROY, UnitState.DESTROYED),
        (EventType.EXPORT, UnitState.EXPORTED),
        (EventType.DECOMMISSION, UnitState.DECOMMISSIONED),
    ],
)
def test_final_events_end_the_life_of_a_unit(kind: EventType, state: UnitState) -> None:
    world = one(held(UnitState.RECEIVED, HUB))
    world.run(event(kind, HUB), HUB)
    assert world.objects[UNIT].state is state
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(EventType.SHIP, HUB, destination_gln=PHARMACY.gln), HUB)
    assert refused.value.rule == "custody.final_state"


def test_quarantine_blocks_shipping_until_released() -> None:
    world = one(held(UnitState.RECEIVED, HUB))
    world.run(event(EventType.QUARANTINE, HUB), HUB)
    assert world.objects[UNIT].quarantined
    for kind, rule in [
        (EventType.QUARANTINE, "custody.already_quarantined"),
        (EventType.EXPORT, "custody.quarantined"),
    ]:
        with pytest.raises(CustodyViolation) as refused:
            world.run(event(kind, HUB), HUB)
        assert refused.value.rule == rule
    world.run(event(EventType.DESTROY, HUB, event_time="2026-11-22T11:00:00Z"), HUB)
    assert world.objects[UNIT].state is UnitState.DESTROYED


def test_release_needs_a_quarantine() -> None:
    world = one(held(UnitState.RECEIVED, HUB, quarantined=True))
    world.run(event(EventType.RELEASE, HUB), HUB)
    assert not world.objects[UNIT].quarantined
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(EventType.RELEASE, HUB), HUB)
    assert refused.value.rule == "custody.not_quarantined"


def _units(*serials: str) -> list[dict[str, str]]:
    return [{"gtin": GTIN, "serial": s} for s in serials]


def _palletised_world() -> World:
    """Four units in two cases on one pallet, at the manufacturer."""
    world = World({UnitKey(GTIN, s): held(UnitState.COMMISSIONED, MAKER) for s in "ABCD"})
    world.run(event(EventType.PACK, MAKER, sscc=CASE, children=_units("A", "B")), MAKER)
    other = "395212340000000038"
    world.run(event(EventType.PACK, MAKER, sscc=other, children=_units("C", "D")), MAKER)
    world.run(
        event(EventType.PACK, MAKER, sscc=PALLET, children=[{"sscc": CASE}, {"sscc": other}]),
        MAKER,
    )
    return world


def test_a_pallet_scan_moves_every_unit_inside_recursively() -> None:
    world = _palletised_world()
    assert world.objects[UnitKey(GTIN, "A")].state is UnitState.PACKED
    assert world.objects[UnitKey(GTIN, "A")].parent_sscc == CASE
    assert world.objects[ContainerKey(CASE)].parent_sscc == PALLET

    moved = world.run(event(EventType.SHIP, MAKER, sscc=PALLET, destination_gln=HUB.gln), MAKER)
    assert sorted(k.serial for k in moved) == ["A", "B", "C", "D"]
    world.run(event(EventType.RECEIVE, HUB, sscc=PALLET), HUB)

    for serial in "ABCD":
        unit = world.objects[UnitKey(GTIN, serial)]
        assert (unit.state, unit.holder_gln, unit.location_gln) == (
            UnitState.RECEIVED,
            HUB.gln,
            HUB.gln,
        )
        assert unit.parent_sscc is not None


def test_unpacking_frees_the_children_in_the_containers_state() -> None:
    world = _palletised_world()
    world.run(event(EventType.SHIP, MAKER, sscc=PALLET, destination_gln=HUB.gln), MAKER)
    world.run(event(EventType.RECEIVE, HUB, sscc=PALLET), HUB)
    world.run(event(EventType.UNPACK, HUB, sscc=PALLET), HUB)
    world.run(event(EventType.UNPACK, HUB, sscc=CASE, children=_units("A")), HUB)

    unit_a, unit_b = world.objects[UnitKey(GTIN, "A")], world.objects[UnitKey(GTIN, "B")]
    assert (unit_a.state, unit_a.parent_sscc) == (UnitState.RECEIVED, None)
    assert unit_b.parent_sscc == CASE
    world.run(event(EventType.SHIP, HUB, serial="A", destination_gln=PHARMACY.gln), HUB)
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(EventType.SHIP, HUB, serial="B", destination_gln=PHARMACY.gln), HUB)
    assert refused.value.rule == "custody.packed"


def test_a_quarantined_unit_inside_a_case_holds_the_case_back() -> None:
    world = _palletised_world()
    world.run(event(EventType.QUARANTINE, MAKER, serial="C"), MAKER)
    with pytest.raises(CustodyViolation, match="inside container") as refused:
        world.run(event(EventType.SHIP, MAKER, sscc=PALLET, destination_gln=HUB.gln), MAKER)
    assert refused.value.rule == "custody.quarantined"
    world.run(event(EventType.RELEASE, MAKER, serial="C"), MAKER)
    world.run(event(EventType.SHIP, MAKER, sscc=PALLET, destination_gln=HUB.gln), MAKER)
    assert world.objects[UnitKey(GTIN, "C")].state is UnitState.IN_TRANSIT


def test_a_pallet_quarantine_flags_everything_inside() -> None:
    world = _palletised_world()
    world.run(event(EventType.QUARANTINE, MAKER, sscc=PALLET), MAKER)
    assert all(c.quarantined for c in world.objects.values())
    world.run(event(EventType.RELEASE, MAKER, sscc=PALLET), MAKER)
    assert not any(c.quarantined for c in world.objects.values())


@pytest.mark.parametrize(
    ("target", "children", "rule"),
    [
        ("395212340000000045", _units("A"), "custody.already_packed"),
        ("395212340000000045", _units("Z"), "custody.unknown_unit"),
        ("395212340000000045", [{"sscc": CASE}], "custody.already_packed"),
        (CASE, [{"sscc": PALLET}], "custody.packed"),
    ],
)
def test_packing_refuses_what_cannot_go_in(
    target: str, children: list[dict[str, str]], rule: str
) -> None:
    world = _palletised_world()
    before = dict(world.objects)
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(EventType.PACK, MAKER, sscc=target, children=children), MAKER)
    assert refused.value.rule == rule
    assert world.objects == before


def test_only_the_holder_packs_and_unpacks() -> None:
    world = _palletised_world()
    for kind in (EventType.PACK, EventType.UNPACK):
        with pytest.raises(CustodyViolation) as refused:
            world.run(event(kind, HUB, sscc=PALLET, children=[{"sscc": CASE}]), HUB)
        assert refused.value.rule == "custody.not_holder"
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(EventType.UNPACK, MAKER, sscc=CASE, children=_units("C")), MAKER)
    assert refused.value.rule == "custody.packed"


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
        (EventType.STORE, HUB, held(UnitState.RECEIVED, MAKER), {}, "custody.not_holder"),
        (
            EventType.RETURN,
            PHARMACY,
            held(UnitState.IN_TRANSIT, HUB, PHARMACY.gln),
            {"destination_gln": HUB.gln},
            "custody.not_holder",
        ),
        (EventType.DESTROY, HUB, held(UnitState.DESTROYED, HUB), {}, "custody.final_state"),
        (EventType.QUARANTINE, PHARMACY, held(UnitState.RECEIVED, HUB), {}, "custody.not_holder"),
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
    world = one(current)
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(kind, actor, **fields), actor)
    assert refused.value.rule == rule
    assert world.objects == one(current).objects


def test_an_event_signed_for_another_place_is_refused() -> None:
    with pytest.raises(CustodyViolation, match="not 9529012000002's") as refused:
        one(held(UnitState.IN_TRANSIT, MAKER, HUB.gln)).run(event(EventType.RECEIVE, HUB), PHARMACY)
    assert refused.value.rule == "custody.wrong_location"


THREE_PL = Actor("9520000000013", Role.DISTRIBUTOR)


def test_a_participant_acts_for_itself_at_its_own_gln_whatever_it_was_granted() -> None:
    assert acting_at(THREE_PL.gln, THREE_PL, {HUB.gln: HUB}, what="the event") == THREE_PL


def test_a_grantee_acts_for_its_principal_at_the_granted_gln() -> None:
    assert acting_at(HUB.gln, THREE_PL, {HUB.gln: HUB}, what="the event") == HUB


@pytest.mark.parametrize(
    "granted",
    [{}, {PHARMACY.gln: PHARMACY}],
    ids=["no grant", "a grant for another gln"],
)
def test_a_gln_not_granted_is_the_wrong_location(granted: dict[str, Actor]) -> None:
    with pytest.raises(CustodyViolation, match="granted 9520000000013 no capture") as refused:
        acting_at(HUB.gln, THREE_PL, granted, what="the event")
    assert refused.value.rule == "custody.wrong_location"


def test_the_principal_receives_what_its_grantee_scans_at_its_gln() -> None:
    """The custody after an event captured under a grant is the principal's: the 3PL's scan
    at the distributor's warehouse puts the unit in the distributor's stock."""
    world = one(held(UnitState.IN_TRANSIT, MAKER, HUB.gln))
    principal = acting_at(HUB.gln, THREE_PL, {HUB.gln: HUB}, what="the event")
    world.run(event(EventType.RECEIVE, HUB), principal)
    assert world.objects[UNIT].holder_gln == HUB.gln


def test_a_gtin_outside_the_company_prefix_cannot_be_commissioned() -> None:
    foreign = event(
        EventType.COMMISSION, MAKER, lot="L1", expiry="2028-01-31", gtin="09529999000118"
    )
    with pytest.raises(CustodyViolation, match="outside company prefix 9521234"):
        World().run(foreign, MAKER)


def test_commissioning_needs_lot_and_expiry() -> None:
    with pytest.raises(InvalidInput, match="lot and an expiry"):
        World().run(event(EventType.COMMISSION, MAKER), MAKER)


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"type": "ship"}, "event.destination"),
        ({"destination_gln": HUB.gln}, "event.destination"),
        ({"event_time": "2026-11-22T10:00:00"}, "event.naive_time"),
        ({"gln": "9521234000007"}, "gs1.bad_check_digit"),
        ({"gtin": "9521234000112"}, "gs1.gtin_format"),
        ({"sscc": CASE, "gtin": GTIN, "serial": "S1"}, "event.object"),
        ({"serial": None}, "event.object"),
        ({"location_gln": FRIDGE}, "event.location"),
        ({"children": [{"sscc": CASE}]}, "event.children"),
        ({"sscc": "395212340000000015"}, "gs1.bad_check_digit"),
        ({"sscc": "3952123400"}, "gs1.sscc_format"),
    ],
)
def test_a_malformed_event_names_the_problem(fields: dict[str, str], rule: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        event(EventType.RECEIVE, HUB, **fields)
    assert refused.value.rule == rule


@pytest.mark.parametrize(
    ("kind", "fields", "rule"),
    [
        (EventType.PACK, {"sscc": CASE}, "event.children"),
        (EventType.PACK, {"sscc": CASE, "children": [{"sscc": CASE}]}, "event.children"),
        (EventType.PACK, {"sscc": CASE, "children": _units("A", "A")}, "event.children"),
        (EventType.UNPACK, {}, "event.needs_sscc"),
        (EventType.DISPENSE, {"sscc": CASE}, "event.needs_unit"),
        (EventType.RETURN, {}, "event.destination"),
    ],
)
def test_each_type_gets_the_members_it_needs(
    kind: EventType, fields: dict[str, object], rule: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        event(kind, HUB, **fields)
    assert refused.value.rule == rule


# --- blocking rules: quarantined, recalled, expired units stay where they are ---------------


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        ({"quarantined": True}, "custody.quarantined"),
        ({"recalled": True}, "custody.recalled"),
        ({"expiry": dt.date(2026, 11, 21)}, "custody.expired"),
    ],
)
@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (EventType.SHIP, {"destination_gln": PHARMACY.gln}),
        (EventType.EXPORT, {}),
    ],
)
def test_a_blocked_unit_is_not_shipped_and_the_world_is_unchanged(
    flags: dict[str, object], rule: str, kind: EventType, fields: dict[str, str]
) -> None:
    world = one(held(UnitState.RECEIVED, HUB, **flags))
    before = dict(world.objects)
    with pytest.raises(CustodyViolation) as refused:
        world.run(event(kind, HUB, **fields), HUB)
    assert refused.value.rule == rule
    assert world.objects == before


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        ({"recalled": True}, "custody.recalled"),
        ({"expiry": dt.date(2026, 11, 21)}, "custody.expired"),
    ],
)
def test_a_pharmacy_dispenses_no_recalled_or_expired_pack(
    flags: dict[str, object], rule: str
) -> None:
    world = one(held(UnitState.RECEIVED, PHARMACY, **flags))
    with pytest.raises(CustodyViolation, match="return or destroy") as refused:
        world.run(event(EventType.DISPENSE, PHARMACY), PHARMACY)
    assert refused.value.rule == rule


def test_expiry_is_judged_on_the_events_date_and_the_expiry_day_is_usable() -> None:
    world = one(held(UnitState.RECEIVED, PHARMACY, expiry=dt.date(2026, 11, 22)))
    world.run(event(EventType.DISPENSE, PHARMACY, event_time="2026-11-22T23:59:59Z"), PHARMACY)
    assert world.objects[UNIT].state is UnitState.DISPENSED
    late = one(held(UnitState.RECEIVED, PHARMACY, expiry=dt.date(2026, 11, 22)))
    with pytest.raises(CustodyViolation) as refused:
        late.run(event(EventType.DISPENSE, PHARMACY, event_time="2026-11-23T00:00:00Z"), PHARMACY)
    assert refused.value.rule == "custody.expired"


def test_a_recalled_unit_may_still_be_returned_destroyed_or_quarantined() -> None:
    for kind, fields in [
        (EventType.RETURN, {"destination_gln": MAKER.gln}),
        (EventType.DESTROY, {}),
        (EventType.QUARANTINE, {}),
        (EventType.STORE, {}),
    ]:
        world = one(held(UnitState.RECEIVED, HUB, recalled=True))
        world.run(event(kind, HUB, **fields), HUB)


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        ({"recalled": True}, "custody.recalled"),
        ({"expiry": EXPIRY.replace(year=2020)}, "custody.expired"),
    ],
)
def test_a_pallet_with_a_blocked_unit_inside_is_held_back_naming_the_unit(
    flags: dict[str, object], rule: str
) -> None:
    world = _palletised_world()
    world.objects[UnitKey(GTIN, "D")] = replace(world.objects[UnitKey(GTIN, "D")], **flags)  # type: ignore[arg-type]
    before = dict(world.objects)
    with pytest.raises(
        CustodyViolation, match=f"unit {GTIN}/D inside container {PALLET}"
    ) as refused:
        world.run(event(EventType.SHIP, MAKER, sscc=PALLET, destination_gln=HUB.gln), MAKER)
    assert refused.value.rule == rule
    assert world.objects == before


# --- receipts of what was shipped elsewhere -------------------------------------------------


def test_a_receipt_elsewhere_is_refused_by_default_and_flagged_under_the_policy() -> None:
    shipped = held(UnitState.IN_TRANSIT, MAKER, HUB.gln)
    with pytest.raises(CustodyViolation) as refused:
        apply_event(event(EventType.RECEIVE, PHARMACY), one(shipped), PHARMACY)
    assert refused.value.rule == "custody.not_shipped_to_you"

    outcome = apply_event(
        event(EventType.RECEIVE, PHARMACY),
        one(shipped),
        PHARMACY,
        receipt_policy=ReceiptPolicy.FLAG_SUSPECT,
    )
    assert outcome.changes[UNIT] == held(UnitState.RECEIVED, PHARMACY)
    assert outcome.diversion == Diversion(UNIT, PHARMACY.gln, HUB.gln, MAKER.gln)
    normal = apply_event(
        event(EventType.RECEIVE, HUB), one(shipped), HUB, receipt_policy=ReceiptPolicy.FLAG_SUSPECT
    )
    assert normal.diversion is None


def test_the_policy_never_accepts_receiving_what_one_already_holds() -> None:
    with pytest.raises(CustodyViolation) as refused:
        apply_event(
            event(EventType.RECEIVE, HUB),
            one(held(UnitState.RECEIVED, HUB)),
            HUB,
            receipt_policy=ReceiptPolicy.FLAG_SUSPECT,
        )
    assert refused.value.rule == "custody.not_shipped_to_you"
