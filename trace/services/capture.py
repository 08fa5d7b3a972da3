"""Capture: signed envelopes in, durable events and ledger leaves out.

A batch is one transaction. Each envelope is checked in order (station known, the caller's,
active; signature; event shape; custody rule) against the state left by the envelopes before
it, and the first refusal rolls everything back, naming the envelope's index and the rule.
Only when every envelope passes are the leaves appended and the events written, in the same
transaction: nothing is acknowledged before it is committed, and a retry of an acknowledged
event returns its first receipt and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from medtrace import custody
from medtrace.envelope import event_id, leaf_bytes, verify_envelope
from medtrace.errors import (
    Conflict,
    CustodyViolation,
    InvalidInput,
    MedtraceError,
    SignatureRejected,
)
from medtrace.ledger import sql as ledger_sql
from medtrace.models import Event, EventType, Participant, Role, Unit, utcnow
from medtrace.schemas import CaptureResult, EnvelopeIn, SignedEvent
from medtrace.store import events as event_store
from medtrace.store import participants as participant_store
from medtrace.store import stations as station_store
from medtrace.store import units as unit_store

# PostgreSQL SQLSTATEs that mean "another transaction won; retry": serialization failure,
# deadlock. (A unique violation arrives as IntegrityError.)
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


@dataclass
class _Batch:
    """What a batch has decided so far, before anything is written."""

    actor: custody.Actor
    participant_id: int
    order: list[tuple[str, bool]] = field(default_factory=list)  # (event id, duplicate)
    known: dict[str, int] = field(default_factory=dict)  # captured before: id -> leaf index
    new: dict[str, tuple[Event, bytes]] = field(default_factory=dict)  # id -> (row, leaf)
    units: dict[tuple[str, str], Unit] = field(default_factory=dict)


def capture_envelopes(
    *, session: Session, participant: Participant, envelopes: Sequence[EnvelopeIn]
) -> list[CaptureResult]:
    """Capture a batch of signed envelopes for ``participant``; all or nothing.

    Raises the ``MedtraceError`` of the first refused envelope (its ``index`` in the context),
    or ``Conflict`` when a concurrent capture won a race on the same units (retry is safe).
    """
    if not envelopes:
        raise InvalidInput("send at least one envelope", rule="capture.empty")
    assert participant.id is not None
    batch = _Batch(
        actor=custody.Actor(participant.gln, participant.role, participant.company_prefix),
        participant_id=participant.id,
    )
    try:
        with session.begin():
            ledger_sql.begin_append(session.connection())
            for index, envelope in enumerate(envelopes):
                try:
                    _check_envelope(session, batch, envelope)
                except MedtraceError as exc:
                    exc.context.setdefault("index", index)
                    raise
            _write(session, batch)
    except IntegrityError as exc:
        raise _conflict() from exc
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            raise _conflict() from exc
        raise
    return [
        CaptureResult(
            event_id=eid,
            leaf_index=batch.known[eid] if eid in batch.known else batch.new[eid][0].leaf_index,
            duplicate=duplicate,
        )
        for eid, duplicate in batch.order
    ]


def _conflict() -> Conflict:
    return Conflict(
        "a concurrent capture touched the same units; retrying the batch is safe",
        rule="store.conflict",
    )


def _check_envelope(session: Session, batch: _Batch, envelope: EnvelopeIn) -> None:
    """Check one envelope against the batch so far and record what it will write."""
    _check_station(session, batch, envelope)
    event = _parse_event(envelope)
    eid = event_id(envelope.event)
    if eid in batch.new or eid in batch.known:
        batch.order.append((eid, True))
        return
    existing = event_store.get_event(session=session, event_id=eid)
    if existing is not None:
        batch.known[eid] = existing.leaf_index
        batch.order.append((eid, True))
        return
    _apply_custody(session, batch, event)
    row = Event(
        event_id=eid,
        leaf_index=-1,
        type=event.type,
        gtin=event.gtin,
        serial=event.serial,
        gln=event.gln,
        destination_gln=event.destination_gln,
        event_time=event.event_time,
        station_id=envelope.station_id,
        participant_id=batch.participant_id,
    )
    batch.new[eid] = (row, leaf_bytes(envelope.model_dump()))
    batch.order.append((eid, False))


def _check_station(session: Session, batch: _Batch, envelope: EnvelopeIn) -> None:
    station = station_store.get_station(session=session, station_id=envelope.station_id)
    if station is None:
        raise SignatureRejected(
            f"station {envelope.station_id!r} is not registered; register its public key first",
            rule="station.unknown",
        )
    if station.participant_id != batch.participant_id:
        raise SignatureRejected(
            f"station {envelope.station_id!r} belongs to another participant",
            rule="station.not_yours",
        )
    if not station.active:
        raise SignatureRejected(
            f"station {envelope.station_id!r} is deactivated", rule="station.inactive"
        )
    verify_envelope(envelope.model_dump(), station.public_key)


def _parse_event(envelope: EnvelopeIn) -> SignedEvent:
    try:
        event = SignedEvent.model_validate(envelope.event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidInput(f"event.{where}: {first['msg']}", rule="event.invalid") from exc
    if event.station_id != envelope.station_id:
        raise InvalidInput(
            "the event's station_id differs from the envelope's", rule="event.station_mismatch"
        )
    return event


def _apply_custody(session: Session, batch: _Batch, event: SignedEvent) -> None:
    key = (event.gtin, event.serial)
    unit = batch.units.get(key) or unit_store.get_unit(
        session=session, gtin=event.gtin, serial=event.serial, for_update=True
    )
    current = (
        None
        if unit is None
        else custody.Custody(
            lot=unit.lot,
            expiry=unit.expiry,
            state=unit.state,
            holder_gln=unit.holder_gln,
            destination_gln=unit.destination_gln,
        )
    )
    if event.type is EventType.SHIP:
        _check_destination(session, event)
    after = custody.apply_event(event, current, batch.actor)
    if unit is None:
        unit = unit_store.add_unit(
            session=session,
            unit=Unit(
                gtin=event.gtin,
                serial=event.serial,
                lot=after.lot,
                expiry=after.expiry,
                state=after.state,
                holder_gln=after.holder_gln,
            ),
        )
    unit.state, unit.holder_gln = after.state, after.holder_gln
    unit.destination_gln, unit.updated_at = after.destination_gln, utcnow()
    batch.units[key] = unit


def _check_destination(session: Session, event: SignedEvent) -> None:
    assert event.destination_gln is not None
    destination = participant_store.get_participant_by_gln(
        session=session, gln=event.destination_gln
    )
    if destination is None:
        raise CustodyViolation(
            f"destination {event.destination_gln} is not a registered participant",
            rule="custody.unknown_destination",
        )
    if destination.role is Role.REGULATOR:
        raise CustodyViolation(
            "goods are not shipped to a regulator", rule="custody.bad_destination"
        )


def _write(session: Session, batch: _Batch) -> None:
    if not batch.new:
        return
    rows = list(batch.new.values())
    first = ledger_sql.append_leaves(session.connection(), [leaf for _, leaf in rows])
    for offset, (row, _) in enumerate(rows):
        row.leaf_index = first + offset
    event_store.add_events(session=session, events=[row for row, _ in rows])
    session.flush()
