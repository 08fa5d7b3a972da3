"""Captured events, and which units each concerns (``event_units``).

A unit's history is one indexed query on ``event_units`` (primary key gtin, serial,
leaf_index), whichever case or pallet carried the unit when the event named only its SSCC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
)
from sqlmodel import Session, col
from sqlmodel import select as select_model

from medtrace.custody import ContainerKey, Key, UnitKey
from medtrace.ledger import insert_rows
from medtrace.models import Event, EventType, EventUnit, Unit, as_utc, utcnow
from medtrace.schemas.capture import SignedEvent
from medtrace.store.units import slices, unit_keys_in

_events: Table = Event.__table__  # type: ignore[attr-defined]
_event_units: Table = EventUnit.__table__  # type: ignore[attr-defined]
_units: Table = Unit.__table__  # type: ignore[attr-defined]


@dataclass
class NewEvent:
    """An accepted event about to be written: its row's content, its leaf and the units it
    concerns; ``leaf_index`` is set once the leaves are appended."""

    event_id: str
    event: SignedEvent
    station_id: str | None
    participant_id: int
    leaf: bytes
    epcis_id: str
    biz_location: str | None
    units: list[tuple[str, str]] = field(default_factory=list)
    leaf_index: int = -1


def get_event(*, session: Session, event_id: str) -> Event | None:
    """An event by id."""
    return session.get(Event, event_id)


def get_leaf_indexes(*, session: Session, event_ids: Collection[str]) -> dict[str, int]:
    """The leaf index of each of ``event_ids`` captured before (one query)."""
    found: dict[str, int] = {}
    for ids in slices(sorted(event_ids)):
        statement = select(_events.c.event_id, _events.c.leaf_index).where(
            _events.c.event_id.in_(ids)
        )
        for row in session.connection().execute(statement):
            found[row.event_id] = row.leaf_index
    return found


def get_shipment_times(*, session: Session, keys: Collection[Key]) -> dict[Key, dt.datetime]:
    """When each of ``keys`` was last put on the road (its latest ship or return event, in
    ledger order, naming it), for those ever shipped: one query per slice of units and of
    containers."""
    moves = _events.c.type.in_([EventType.SHIP.value, EventType.RETURN.value])
    units = sorted((k.gtin, k.serial) for k in keys if isinstance(k, UnitKey))
    ssccs = sorted(k.sscc for k in keys if isinstance(k, ContainerKey))
    conn = session.connection()
    found: dict[Key, dt.datetime] = {}
    for pairs in slices(units):
        unit = unit_keys_in(_events.c.gtin, _events.c.serial, pairs)
        latest = select(func.max(_events.c.leaf_index)).where(moves, unit)
        statement = select(_events.c.gtin, _events.c.serial, _events.c.event_time).where(
            _events.c.leaf_index.in_(latest.group_by(_events.c.gtin, _events.c.serial))
        )
        for gtin, serial, shipped_at in conn.execute(statement).tuples():
            found[UnitKey(gtin, serial)] = as_utc(shipped_at)
    for part in slices(ssccs):
        latest = select(func.max(_events.c.leaf_index)).where(moves, _events.c.sscc.in_(part))
        by_container = select(_events.c.sscc, _events.c.event_time).where(
            _events.c.leaf_index.in_(latest.group_by(_events.c.sscc))
        )
        for sscc, shipped_at in conn.execute(by_container).tuples():
            found[ContainerKey(sscc)] = as_utc(shipped_at)
    return found


#: A unit's events (bind ``gtin`` and ``serial``), built once, as every verify runs it:
#: building a statement costs more than running it.
UNIT_HISTORY = (
    select_model(Event)
    .join(EventUnit, col(EventUnit.event_id) == col(Event.event_id))
    .where(col(EventUnit.gtin) == bindparam("gtin"), col(EventUnit.serial) == bindparam("serial"))
    .order_by(col(EventUnit.leaf_index))
)


def get_unit_events(*, session: Session, gtin: str, serial: str) -> Sequence[Event]:
    """A unit's events in ledger order, those naming its case or pallet included: one query
    on the primary key of ``event_units`` (gtin, serial, leaf_index)."""
    return session.exec(UNIT_HISTORY, params={"gtin": gtin, "serial": serial}).all()


def get_lot_events(*, session: Session, gtin: str, lot: str) -> Sequence[Event]:
    """Every event that concerns a unit of a lot (each once, whichever case carried the
    units), in ledger order.

    Written as nested ``IN`` lists (the lot's serials on ``ix_units_gtin_lot``, their links on
    the primary key of ``event_units``, their events on theirs) rather than a join: with no
    statistics, which a SQLite database that only grows never gathers, SQLite joined from
    ``event_units`` and read every link of the GTIN (0.5 s at 10⁶ events, against 5 ms)."""
    serials = select(_units.c.serial).where(_units.c.gtin == gtin, _units.c.lot == lot)
    of_lot = select(_event_units.c.event_id).where(
        _event_units.c.gtin == gtin, _event_units.c.serial.in_(serials)
    )
    statement = (
        select_model(Event).where(col(Event.event_id).in_(of_lot)).order_by(col(Event.leaf_index))
    )
    return session.exec(statement).all()


#: The columns ``add_events`` writes, in the order of its rows.
_EVENT_COLUMNS = (
    "event_id",
    "leaf_index",
    "type",
    "gtin",
    "serial",
    "sscc",
    "gln",
    "destination_gln",
    "biz_location",
    "epcis_id",
    "event_time",
    "station_id",
    "participant_id",
    "recorded_at",
)


def add_events(*, conn: Connection, events: Sequence[NewEvent]) -> None:
    """Insert events and their unit links (two bulk inserts)."""
    now = utcnow()
    insert_rows(
        conn,
        _events,
        _EVENT_COLUMNS,
        [
            (
                e.event_id,
                e.leaf_index,
                e.event.type.value,
                e.event.gtin,
                e.event.serial,
                e.event.sscc,
                e.event.gln,
                e.event.destination_gln,
                e.biz_location,
                e.epcis_id,
                e.event.event_time,
                e.station_id,
                e.participant_id,
                now,
            )
            for e in events
        ],
    )
    links = [(gtin, serial, e.leaf_index, e.event_id) for e in events for gtin, serial in e.units]
    if links:
        insert_rows(conn, _event_units, ("gtin", "serial", "leaf_index", "event_id"), links)


@dataclass(frozen=True)
class EventFilter:
    """What an EPCIS query asks for, in medtrace's columns; ``None`` means "any"."""

    types: frozenset[EventType] | None = None
    ge_time: dt.datetime | None = None
    lt_time: dt.datetime | None = None
    units: tuple[tuple[str, str], ...] = ()
    containers: tuple[str, ...] = ()
    containers_as_parent: bool = False
    biz_locations: frozenset[str] | None = None
    read_points: frozenset[str] | None = None
    destinations: frozenset[str] | None = None
    viewer: Viewer | None = None


@dataclass(frozen=True)
class Viewer:
    """Who reads events, for the events it may see (None in a filter: every event)."""

    participant_id: int
    gln: str
    company_prefix: str | None = None


def find_events(*, session: Session, where: EventFilter, after: int, limit: int) -> Sequence[Event]:
    """Events matching ``where`` in ledger order, from leaf index ``after`` (exclusive) on.

    A unit matches the events naming it and the aggregations that packed or unpacked it
    (``event_units``: an unpack listing no children takes them all out, and a unit inside a
    packed case counts as packed with it); a container matches the events naming it (as
    ``parentID`` only if ``containers_as_parent``). One query, on the events' indexes.
    """
    statement = select_model(Event).where(col(Event.leaf_index) > after)
    if where.types is not None:
        statement = statement.where(col(Event.type).in_(where.types))
    if where.ge_time is not None:
        statement = statement.where(col(Event.event_time) >= where.ge_time)
    if where.lt_time is not None:
        statement = statement.where(col(Event.event_time) < where.lt_time)
    if where.biz_locations is not None:
        statement = statement.where(col(Event.biz_location).in_(where.biz_locations))
    if where.read_points is not None:
        statement = statement.where(col(Event.gln).in_(where.read_points))
    if where.destinations is not None:
        statement = statement.where(col(Event.destination_gln).in_(where.destinations))
    if where.units or where.containers:
        statement = statement.where(or_(*_epc_matches(where)))
    if where.viewer is not None:
        statement = statement.where(_seen_by(where.viewer))
    statement = statement.order_by(col(Event.leaf_index)).limit(limit)
    return session.exec(statement).all()


def seen_by(*, session: Session, epcis_id: str, viewer: Viewer) -> bool:
    """Whether ``viewer`` is party to the event with this EPCIS id (see ``_seen_by``): to any
    of its rows, as a query matching any of them answers the event."""
    statement = select(_events.c.leaf_index).where(_events.c.epcis_id == epcis_id, _seen_by(viewer))
    return session.connection().execute(statement.limit(1)).first() is not None


def _seen_by(viewer: Viewer) -> ColumnElement[bool]:
    """The events ``viewer`` is party to: those it captured, those at or addressed to its GLN,
    those about a unit that was ever at or addressed to its GLN (the unit's history travels
    with it, as DSCSA's transaction history does), and, for a brand owner, those about its
    own GTINs."""
    gln = viewer.gln
    held = (
        select(_event_units.c.gtin, _event_units.c.serial)
        .join(_events, _events.c.leaf_index == _event_units.c.leaf_index)
        .where(or_(_events.c.gln == gln, _events.c.destination_gln == gln))
    )
    of_held = select(_event_units.c.event_id).where(
        tuple_(_event_units.c.gtin, _event_units.c.serial).in_(held)
    )
    seen = [
        col(Event.participant_id) == viewer.participant_id,
        col(Event.gln) == gln,
        col(Event.biz_location) == gln,
        col(Event.destination_gln) == gln,
        col(Event.event_id).in_(of_held),
    ]
    if viewer.company_prefix:
        own = select(_event_units.c.event_id).where(
            _event_units.c.gtin.like(f"_{viewer.company_prefix}%")
        )
        seen.append(col(Event.event_id).in_(own))
    return or_(*seen)


def _epc_matches(where: EventFilter) -> list[ColumnElement[bool]]:
    aggregation = (EventType.PACK, EventType.UNPACK)
    matches: list[ColumnElement[bool]] = []
    if where.units:
        matches.append(unit_keys_in(_events.c.gtin, _events.c.serial, where.units))
        listed = select(_event_units.c.event_id).where(
            unit_keys_in(_event_units.c.gtin, _event_units.c.serial, where.units)
        )
        matches.append(and_(col(Event.type).in_(aggregation), col(Event.event_id).in_(listed)))
    if where.containers:
        named = col(Event.sscc).in_(where.containers)
        matches.append(
            named
            if where.containers_as_parent
            else and_(named, col(Event.type).not_in(aggregation))
        )
    return matches


def get_by_epcis_id(*, session: Session, epcis_id: str) -> Event | None:
    """The first event whose EPCIS form has this CBV 2.0 hash id."""
    statement = (
        select_model(Event).where(col(Event.epcis_id) == epcis_id).order_by(col(Event.leaf_index))
    )
    return session.exec(statement).first()
