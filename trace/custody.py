"""The custody state machine (DESIGN.md, 'Custody state machine'), with aggregation.

Pure rules: given an event, the participant acting and a read-only view of the objects it
touches (``CustodyView``), return the custody of every object after the event, or raise
``CustodyViolation`` naming the rule. Nothing here reads or writes storage: the capture
service hands in a view backed by the database and the batch so far, the tests a dictionary.

Objects are units (GTIN + serial) and containers (an SSCC: a case, a pallet). Packing puts
units or containers into a container; a move of a container (ship, receive, store, destroy,
quarantine, ...) moves everything inside it, at any depth. A packed object moves only with its
container, until it is unpacked. Shipping, exporting or dispensing a quarantined, recalled or
expired unit is refused, and so is moving a container with such a unit inside (the error names
the unit). Each type maps to one GS1 EPCIS 2.0 event (pack and unpack
to an AggregationEvent, the rest to an ObjectEvent) with its CBV 2.0 business step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from medtrace.errors import CustodyViolation, InvalidInput
from medtrace.models import EventType, Role, UnitState
from medtrace.protocol.identifiers import in_company_prefix
from medtrace.schemas.capture import ObjectRef, SignedEvent

FINAL_STATES = frozenset(
    {UnitState.DISPENSED, UnitState.DESTROYED, UnitState.EXPORTED, UnitState.DECOMMISSIONED}
)
#: On the road: the sender no longer holds it, the receiver does not hold it yet.
MOVING_STATES = frozenset({UnitState.IN_TRANSIT, UnitState.RETURNED})
#: Moves that hand a unit on (to another participant, abroad or to a patient): refused for a
#: unit that is quarantined, recalled or expired, and for a container with one inside.
GUARDED_MOVES = frozenset({EventType.SHIP, EventType.DISPENSE, EventType.EXPORT})
#: What a packed object may still undergo on its own: QA flags it inside its case.
ALLOWED_WHEN_PACKED = frozenset({EventType.QUARANTINE, EventType.RELEASE})


@dataclass(frozen=True)
class UnitKey:
    """A serialised unit: GTIN-14 and serial (GS1 AIs 01 + 21)."""

    gtin: str
    serial: str

    def __str__(self) -> str:
        return f"unit {self.gtin}/{self.serial}"


@dataclass(frozen=True)
class ContainerKey:
    """A logistic unit: its SSCC (GS1 AI 00)."""

    sscc: str

    def __str__(self) -> str:
        return f"container {self.sscc}"


Key = UnitKey | ContainerKey


def key_of(ref: ObjectRef) -> Key:
    """The key of the object an event (or one of its children) names."""
    if ref.sscc is not None:
        return ContainerKey(ref.sscc)
    assert ref.gtin is not None and ref.serial is not None  # ObjectRef guarantees one of them
    return UnitKey(ref.gtin, ref.serial)


@dataclass(frozen=True)
class Custody:
    """An object's custody: state, who holds (or shipped) it, where it goes, where it is kept,
    the container it is packed in, and the QA quarantine flag. Units also carry lot and
    expiry, fixed when commissioned, and whether their lot is recalled (read from the
    recalls, never written with the custody)."""

    state: UnitState
    holder_gln: str
    destination_gln: str | None = None
    location_gln: str | None = None
    parent_sscc: str | None = None
    quarantined: bool = False
    lot: str | None = None
    expiry: dt.date | None = None
    recalled: bool = False


class ReceiptPolicy(StrEnum):
    """What to do with a receipt of something not shipped to the receiver (DESIGN.md):
    refuse it, or accept it and flag it suspect (a diversion to investigate)."""

    REFUSE = "refuse"
    FLAG_SUSPECT = "flag_suspect"


@dataclass(frozen=True)
class Actor:
    """The participant an event is recorded for: the capturer at its own GLN, or its
    principal at a GLN granted to it (``acting_at``)."""

    gln: str
    role: Role
    company_prefix: str | None = None


class CustodyView(Protocol):
    """What the rules may read: an object's custody and a container's direct contents, as
    they stand after the events applied so far."""

    def custody(self, key: Key) -> Custody | None: ...

    def contents(self, sscc: str) -> Sequence[Key]: ...


@dataclass(frozen=True)
class Diversion:
    """A receipt accepted under ``ReceiptPolicy.FLAG_SUSPECT`` although the object was not
    shipped to the receiver: where it was going (None if it was not on its way anywhere) and
    who held or shipped it."""

    target: Key
    receiver_gln: str
    expected_gln: str | None
    previous_holder_gln: str


@dataclass(frozen=True)
class Outcome:
    """What an event changes (every object's new custody), which units it concerns (the
    units whose history it joins, at any depth), and a diversion the policy let through."""

    changes: dict[Key, Custody]
    units: list[UnitKey] = field(default_factory=list)
    diversion: Diversion | None = None


def descendants(view: CustodyView, sscc: str) -> Iterator[Key]:
    """Everything inside container ``sscc``, at any depth (depth first)."""
    for child in view.contents(sscc):
        yield child
        if isinstance(child, ContainerKey):
            yield from descendants(view, child.sscc)


def acting_at(gln: str, capturer: Actor, granted: Mapping[str, Actor], *, what: str) -> Actor:
    """The participant for whom ``capturer`` acts at ``gln``: itself at its own GLN, or the
    principal that granted it that GLN (``granted``: the principals of the capturer's grants
    valid now, by GLN). Every other place is refused with ``custody.wrong_location``: this
    is the one decision of where a participant may act, for the event's GLN and for a store
    event's place alike (``what`` names which, for the message).
    """
    if gln == capturer.gln:
        return capturer
    principal = granted.get(gln)
    if principal is None:
        raise CustodyViolation(
            f"{what} is at GLN {gln}, which is not {capturer.gln}'s, and {gln} granted "
            f"{capturer.gln} no capture there (or the grant ended or was revoked)",
            rule="custody.wrong_location",
        )
    return principal


def apply_event(
    event: SignedEvent,
    view: CustodyView,
    actor: Actor,
    *,
    receipt_policy: ReceiptPolicy = ReceiptPolicy.REFUSE,
) -> Outcome:
    """The custody after ``event`` done by ``actor`` (the principal, see ``acting_at``);
    raise ``CustodyViolation`` if a rule forbids it."""
    acting_at(event.gln, actor, {}, what="the event")
    target = key_of(event)
    current = view.custody(target)
    if event.type is EventType.COMMISSION:
        assert isinstance(target, UnitKey)  # SignedEvent refuses a commissioned SSCC
        return _outcome({target: _commission(event, target, current, actor)})
    if event.type is EventType.PACK:
        assert isinstance(target, ContainerKey)
        return _pack(event, target, current, view, actor)
    if current is None:
        raise CustodyViolation(
            f"{target} is unknown here (never commissioned or packed)", rule="custody.unknown_unit"
        )
    _check_same_unit(event, current)
    _check_movable(target, current, event.type)
    if event.type is EventType.UNPACK:
        assert isinstance(target, ContainerKey)
        return _unpack(event, target, current, view, actor)
    diversion = None
    if event.type is EventType.RECEIVE:
        diversion = _check_receipt(target, current, actor, receipt_policy)
    after = _move(event, target, current, actor)
    inside = list(descendants(view, target.sscc)) if isinstance(target, ContainerKey) else []
    if event.type in GUARDED_MOVES:
        day = event.event_time.date()
        _check_may_leave(str(target), current, day)
        for key in inside:
            _check_may_leave(f"{key} inside {target}", _must(view, key), day)
    changes = {target: after}
    for key in inside:
        changes[key] = _carried(_must(view, key), after, event.type)
    outcome = _outcome(changes)
    return replace(outcome, diversion=diversion) if diversion else outcome


def _check_may_leave(what: str, custody: Custody, day: dt.date) -> None:
    """The blocking rules of a guarded move: a quarantined, recalled or expired unit stays
    where it is. A unit expires after its expiry date (that day it is still usable), judged
    on the event's own (UTC) date."""
    if custody.quarantined:
        raise CustodyViolation(
            f"{what} is quarantined: release it first", rule="custody.quarantined"
        )
    if custody.recalled:
        raise CustodyViolation(
            f"{what} belongs to recalled lot {custody.lot}: return or destroy it",
            rule="custody.recalled",
        )
    if custody.expiry is not None and custody.expiry < day:
        raise CustodyViolation(
            f"{what} expired on {custody.expiry}: return or destroy it", rule="custody.expired"
        )


def _check_receipt(
    target: Key, current: Custody, actor: Actor, policy: ReceiptPolicy
) -> Diversion | None:
    """A receipt of what was shipped to the receiver passes. Anything else is refused, unless
    the policy flags it suspect instead; receiving what one already holds is always refused."""
    if current.state in MOVING_STATES and current.destination_gln == actor.gln:
        return None
    if policy is ReceiptPolicy.REFUSE or _holds(current, actor):
        raise CustodyViolation(
            f"{target} was not shipped to {actor.gln}", rule="custody.not_shipped_to_you"
        )
    return Diversion(
        target=target,
        receiver_gln=actor.gln,
        expected_gln=current.destination_gln if current.state in MOVING_STATES else None,
        previous_holder_gln=current.holder_gln,
    )


def _outcome(changes: dict[Key, Custody], *more: Key) -> Outcome:
    keys = [*changes, *more]
    return Outcome(changes, list(dict.fromkeys(k for k in keys if isinstance(k, UnitKey))))


def _must(view: CustodyView, key: Key) -> Custody:
    custody = view.custody(key)
    assert custody is not None, f"{key} is listed inside a container but has no custody"
    return custody


def _commission(
    event: SignedEvent, target: UnitKey, current: Custody | None, actor: Actor
) -> Custody:
    if actor.role is not Role.MANUFACTURER:
        raise CustodyViolation(
            f"only a manufacturer commissions units; {actor.gln} is a {actor.role}",
            rule="custody.not_a_manufacturer",
        )
    if current is not None:
        raise CustodyViolation(
            f"serial {target.serial} of GTIN {target.gtin} is already commissioned",
            rule="custody.already_commissioned",
        )
    if actor.company_prefix is None or not in_company_prefix(target.gtin, actor.company_prefix):
        raise CustodyViolation(
            f"GTIN {target.gtin} is outside company prefix {actor.company_prefix}",
            rule="custody.outside_company_prefix",
        )
    if event.lot is None or event.expiry is None:
        raise InvalidInput("commissioning needs a lot and an expiry", rule="event.missing_lot")
    return Custody(
        state=UnitState.COMMISSIONED,
        holder_gln=actor.gln,
        location_gln=actor.gln,
        lot=event.lot,
        expiry=event.expiry,
    )


def _check_same_unit(event: SignedEvent, current: Custody) -> None:
    """A scan that carries lot or expiry must agree with what was commissioned."""
    if (event.lot is not None and event.lot != current.lot) or (
        event.expiry is not None and event.expiry != current.expiry
    ):
        raise CustodyViolation(
            f"lot/expiry {event.lot}/{event.expiry} differ from the commissioned "
            f"{current.lot}/{current.expiry}",
            rule="custody.unit_mismatch",
        )


def _check_movable(target: Key, current: Custody, kind: EventType) -> None:
    if current.state in FINAL_STATES:
        raise CustodyViolation(
            f"{target} is {current.state}: no further moves", rule="custody.final_state"
        )
    if current.parent_sscc is not None and kind not in ALLOWED_WHEN_PACKED:
        raise CustodyViolation(
            f"{target} is packed in container {current.parent_sscc}: move the container, "
            "or unpack it first",
            rule="custody.packed",
        )


def _holds(current: Custody, actor: Actor) -> bool:
    return current.holder_gln == actor.gln and current.state not in MOVING_STATES


def _check_holder(target: Key, current: Custody, actor: Actor) -> None:
    if not _holds(current, actor):
        raise CustodyViolation(f"{actor.gln} does not hold {target}", rule="custody.not_holder")


def _pack(
    event: SignedEvent,
    target: ContainerKey,
    current: Custody | None,
    view: CustodyView,
    actor: Actor,
) -> Outcome:
    """Aggregation ADD: put held, unpacked objects into a (new or held) container.

    The container itself must not be packed: that also rules out a cycle (a pallet packed
    into a case that is on it), since anything inside a child is packed.
    """
    if current is None:
        container = Custody(
            state=UnitState.COMMISSIONED, holder_gln=actor.gln, location_gln=actor.gln
        )
    else:
        _check_movable(target, current, EventType.PACK)
        _check_holder(target, current, actor)
        container = current
    changes: dict[Key, Custody] = {target: container}
    inside: list[Key] = []
    for ref in event.children or ():
        child = key_of(ref)
        custody = view.custody(child)
        if custody is None:
            raise CustodyViolation(f"{child} is unknown here", rule="custody.unknown_unit")
        if custody.state in FINAL_STATES:
            raise CustodyViolation(
                f"{child} is {custody.state}: no further moves", rule="custody.final_state"
            )
        _check_holder(child, custody, actor)
        if custody.parent_sscc is not None:
            raise CustodyViolation(
                f"{child} is already packed in container {custody.parent_sscc}",
                rule="custody.already_packed",
            )
        if isinstance(child, ContainerKey):
            inside.extend(descendants(view, child.sscc))
        changes[child] = replace(
            custody, state=UnitState.PACKED, parent_sscc=target.sscc, destination_gln=None
        )
    return _outcome(changes, *inside)


def _unpack(
    event: SignedEvent, target: ContainerKey, current: Custody, view: CustodyView, actor: Actor
) -> Outcome:
    """Aggregation DELETE: take the listed children (all when none are listed) out; they take
    the container's state and place."""
    _check_holder(target, current, actor)
    listed = [key_of(ref) for ref in event.children] if event.children else None
    children = listed if listed is not None else list(view.contents(target.sscc))
    if not children:
        raise CustodyViolation(f"{target} is empty", rule="custody.not_in_container")
    changes: dict[Key, Custody] = {}
    inside: list[Key] = []
    for child in children:
        custody = view.custody(child)
        if custody is None or custody.parent_sscc != target.sscc:
            raise CustodyViolation(f"{child} is not in {target}", rule="custody.not_in_container")
        if isinstance(child, ContainerKey):
            inside.extend(descendants(view, child.sscc))
        changes[child] = replace(
            custody,
            state=current.state,
            holder_gln=current.holder_gln,
            location_gln=current.location_gln,
            parent_sscc=None,
        )
    return _outcome(changes, *inside)


def _move(event: SignedEvent, target: Key, current: Custody, actor: Actor) -> Custody:
    """The target's custody after a non-aggregation event (its contents follow it)."""
    kind = event.type
    if kind is EventType.RECEIVE:  # _check_receipt decided whether it may
        return replace(
            current,
            state=UnitState.RECEIVED,
            holder_gln=actor.gln,
            destination_gln=None,
            location_gln=actor.gln,
        )
    if kind is EventType.DISPENSE and actor.role is not Role.PHARMACY:
        raise CustodyViolation(
            f"only a pharmacy dispenses; {actor.gln} is a {actor.role}",
            rule="custody.not_a_pharmacy",
        )
    _check_holder(target, current, actor)
    match kind:
        case EventType.SHIP | EventType.RETURN:
            if event.destination_gln == actor.gln:
                raise CustodyViolation(
                    "a shipment must leave its origin", rule="custody.same_location"
                )
            state = UnitState.IN_TRANSIT if kind is EventType.SHIP else UnitState.RETURNED
            return replace(
                current, state=state, destination_gln=event.destination_gln, location_gln=None
            )
        case EventType.STORE:
            return replace(
                current, state=UnitState.STORED, location_gln=event.location_gln or event.gln
            )
        case EventType.QUARANTINE:
            if current.quarantined:
                raise CustodyViolation(
                    f"{target} is already quarantined", rule="custody.already_quarantined"
                )
            return replace(current, quarantined=True)
        case EventType.RELEASE:
            if not current.quarantined:
                raise CustodyViolation(
                    f"{target} is not quarantined", rule="custody.not_quarantined"
                )
            return replace(current, quarantined=False)
    return replace(current, state=_FINAL_BY_TYPE[kind])


_FINAL_BY_TYPE = {
    EventType.DISPENSE: UnitState.DISPENSED,
    EventType.DESTROY: UnitState.DESTROYED,
    EventType.EXPORT: UnitState.EXPORTED,
    EventType.DECOMMISSION: UnitState.DECOMMISSIONED,
}


def _carried(inside: Custody, container: Custody, kind: EventType) -> Custody:
    """What happens to an object inside a container the event moves: it follows the
    container's state, holder and place; a QA event sets its flag too."""
    if kind in ALLOWED_WHEN_PACKED:
        return replace(inside, quarantined=container.quarantined)
    return replace(
        inside,
        state=container.state,
        holder_gln=container.holder_gln,
        destination_gln=container.destination_gln,
        location_gln=container.location_gln,
    )
