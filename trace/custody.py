"""The custody state machine for one unit (DESIGN.md, 'Custody state machine').

Pure functions: given the unit's current custody and the participant acting, return the
custody after the event or raise ``CustodyViolation`` naming the rule. Nothing here reads or
writes storage, so every rule is testable on its own and the capture service can apply a
batch in memory before writing anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from medtrace.errors import CustodyViolation, InvalidInput
from medtrace.identifiers import in_company_prefix
from medtrace.models import EventType, Role, UnitState
from medtrace.schemas import SignedEvent

FINAL_STATES = frozenset({UnitState.DISPENSED, UnitState.DESTROYED, UnitState.EXPORTED})


@dataclass(frozen=True)
class Custody:
    """A unit's custody: its state, who holds it (or shipped it), where it is going."""

    lot: str
    expiry: dt.date
    state: UnitState
    holder_gln: str
    destination_gln: str | None = None


@dataclass(frozen=True)
class Actor:
    """The participant whose station signed the event."""

    gln: str
    role: Role
    company_prefix: str | None = None


def apply_event(event: SignedEvent, current: Custody | None, actor: Actor) -> Custody:
    """The unit's custody after ``event``; raise ``CustodyViolation`` if a rule forbids it."""
    if event.gln != actor.gln:
        raise CustodyViolation(
            f"the event is at GLN {event.gln}, but the station belongs to {actor.gln}",
            rule="custody.wrong_location",
        )
    if event.type is EventType.COMMISSION:
        return _commission(event, current, actor)
    if current is None:
        raise CustodyViolation(
            f"unit {event.gtin}/{event.serial} was never commissioned", rule="custody.unknown_unit"
        )
    _check_same_unit(event, current)
    if current.state in FINAL_STATES:
        raise CustodyViolation(
            f"unit {event.gtin}/{event.serial} is {current.state}: no further moves",
            rule="custody.final_state",
        )
    match event.type:
        case EventType.SHIP:
            return _ship(event, current, actor)
        case EventType.RECEIVE:
            return _receive(current, actor)
        case EventType.DISPENSE:
            return _dispense(current, actor)
    raise AssertionError(f"unhandled event type {event.type}")  # pragma: no cover


def _commission(event: SignedEvent, current: Custody | None, actor: Actor) -> Custody:
    if actor.role is not Role.MANUFACTURER:
        raise CustodyViolation(
            f"only a manufacturer commissions units; {actor.gln} is a {actor.role}",
            rule="custody.not_a_manufacturer",
        )
    if current is not None:
        raise CustodyViolation(
            f"serial {event.serial} of GTIN {event.gtin} is already commissioned",
            rule="custody.already_commissioned",
        )
    if actor.company_prefix is None or not in_company_prefix(event.gtin, actor.company_prefix):
        raise CustodyViolation(
            f"GTIN {event.gtin} is outside company prefix {actor.company_prefix}",
            rule="custody.outside_company_prefix",
        )
    if event.lot is None or event.expiry is None:
        raise InvalidInput("commissioning needs a lot and an expiry", rule="event.missing_lot")
    return Custody(
        lot=event.lot, expiry=event.expiry, state=UnitState.COMMISSIONED, holder_gln=actor.gln
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


def _holds(current: Custody, actor: Actor) -> bool:
    return current.holder_gln == actor.gln and current.state is not UnitState.IN_TRANSIT


def _ship(event: SignedEvent, current: Custody, actor: Actor) -> Custody:
    if not _holds(current, actor):
        raise CustodyViolation(
            f"{actor.gln} does not hold unit {event.gtin}/{event.serial}", rule="custody.not_holder"
        )
    if event.destination_gln == actor.gln:
        raise CustodyViolation("a shipment must leave its origin", rule="custody.same_location")
    return Custody(
        lot=current.lot,
        expiry=current.expiry,
        state=UnitState.IN_TRANSIT,
        holder_gln=actor.gln,
        destination_gln=event.destination_gln,
    )


def _receive(current: Custody, actor: Actor) -> Custody:
    if current.state is not UnitState.IN_TRANSIT or current.destination_gln != actor.gln:
        raise CustodyViolation(
            f"the unit was not shipped to {actor.gln}", rule="custody.not_shipped_to_you"
        )
    return Custody(
        lot=current.lot, expiry=current.expiry, state=UnitState.RECEIVED, holder_gln=actor.gln
    )


def _dispense(current: Custody, actor: Actor) -> Custody:
    if actor.role is not Role.PHARMACY:
        raise CustodyViolation(
            f"only a pharmacy dispenses; {actor.gln} is a {actor.role}",
            rule="custody.not_a_pharmacy",
        )
    if not _holds(current, actor):
        raise CustodyViolation(f"{actor.gln} does not hold the unit", rule="custody.not_holder")
    return Custody(
        lot=current.lot, expiry=current.expiry, state=UnitState.DISPENSED, holder_gln=actor.gln
    )
