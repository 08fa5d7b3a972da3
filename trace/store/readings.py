"""Sensors, their readings, refused readings, bindings and grants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, insert
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import Select, SelectOfScalar

from medtrace.models import Container, Event, EventType, Participant
from medtrace.models.iot import (
    BindingKind,
    Reading,
    ReadingReject,
    Sensor,
    SensorBinding,
    SensorGrant,
)
from medtrace.store.grant_rows import GrantRow, grant_rows

_readings: Table = Reading.__table__  # type: ignore[attr-defined]
# Sensors per lookup query: an OR of this many terms stays well below SQLite's limit on the
# depth of an expression (1 000).
_SENSORS_PER_LOOKUP = 100


def known_readings_query(
    seqs_by_sensor: Mapping[str, Sequence[int]],
) -> Select[str, int, str, int]:
    """(sensor, seq, digest, leaf index) of the given sequence numbers of a few sensors.

    Asked as ``sensor_id = ? AND seq IN (...)`` per sensor, which both databases answer from
    the primary key: SQLite answers the row-value form ``(sensor_id, seq) IN (...)`` by
    scanning the whole table (65 ms per batch at 200 000 readings, and growing with them).
    """
    terms = [
        and_(col(Reading.sensor_id) == sensor_id, col(Reading.seq).in_(seqs))
        for sensor_id, seqs in seqs_by_sensor.items()
    ]
    return select(Reading.sensor_id, Reading.seq, Reading.digest, Reading.leaf_index).where(
        or_(*terms)
    )


def known_readings(
    *, session: Session, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[str, int]]:
    """For the (sensor, seq) keys already captured: their (digest, leaf index)."""
    by_sensor: dict[str, list[int]] = {}
    for sensor_id, seq in keys:
        by_sensor.setdefault(sensor_id, []).append(seq)
    sensors = list(by_sensor.items())
    known: dict[tuple[str, int], tuple[str, int]] = {}
    for start in range(0, len(sensors), _SENSORS_PER_LOOKUP):
        chunk = dict(sensors[start : start + _SENSORS_PER_LOOKUP])
        rows = session.exec(known_readings_query(chunk))
        known.update({(s, q): (d, i) for s, q, d, i in rows})
    return known


def add_readings(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert readings in one Core ``executemany`` on the table: capture's hot path, where
    the ORM's bulk insert costs 40 % more per row for the same statement (SQLite, 500 rows:
    19.5 µs against 13.9 µs)."""
    if rows:
        session.connection().execute(insert(_readings), list(rows))


def get_reading(*, session: Session, sensor_id: str, seq: int) -> Reading | None:
    """A reading by its key."""
    return session.get(Reading, (sensor_id, seq))


def readings_between(
    *, session: Session, sensor_id: str, start: dt.datetime, end: dt.datetime
) -> Sequence[Reading]:
    """A sensor's readings taken in ``[start, end)``, in time order."""
    statement = (
        select(Reading)
        .where(
            Reading.sensor_id == sensor_id,
            col(Reading.taken_at) >= start,
            col(Reading.taken_at) < end,
        )
        .order_by(col(Reading.taken_at), col(Reading.seq))
    )
    return session.exec(statement).all()


def known_reject_digests(*, session: Session, digests: Iterable[str]) -> set[str]:
    """The digests among ``digests`` whose message was refused before."""
    wanted = set(digests)
    if not wanted:
        return set()
    rows = session.exec(select(ReadingReject.digest).where(col(ReadingReject.digest).in_(wanted)))
    return set(rows)


def add_rejects(*, session: Session, rejects: Sequence[ReadingReject]) -> None:
    """Insert refused messages."""
    session.add_all(rejects)


def trim_rejects(*, session: Session, sensor_ids: Iterable[str], keep: int) -> None:
    """Keep only the newest ``keep`` refused messages of each of ``sensor_ids`` (registered
    sensors), and the newest ``keep`` of those naming no registered sensor, taken together."""
    registered = select(Sensor.sensor_id)
    unregistered = or_(
        col(ReadingReject.sensor_id).is_(None), col(ReadingReject.sensor_id).not_in(registered)
    )
    buckets = [col(ReadingReject.sensor_id) == s for s in set(sensor_ids)]
    for bucket in [*buckets, unregistered]:
        _trim(session, bucket, keep)


def _trim(session: Session, bucket: ColumnElement[bool], keep: int) -> None:
    beyond = (
        select(ReadingReject.id).where(bucket).order_by(col(ReadingReject.id).desc()).offset(keep)
    )
    session.connection().execute(delete(ReadingReject).where(col(ReadingReject.id).in_(beyond)))


def list_rejects(
    *, session: Session, sensor_id: str | None, owner_id: int | None, limit: int
) -> Sequence[ReadingReject]:
    """The most recent refused messages, optionally of one sensor, optionally only of the
    sensors one participant registered (``owner_id``)."""
    statement = select(ReadingReject).order_by(col(ReadingReject.id).desc()).limit(limit)
    if sensor_id is not None:
        statement = statement.where(ReadingReject.sensor_id == sensor_id)
    if owner_id is not None:
        statement = statement.join(
            Sensor, col(Sensor.sensor_id) == col(ReadingReject.sensor_id)
        ).where(Sensor.participant_id == owner_id)
    return session.exec(statement).all()


def add_binding(*, session: Session, binding: SensorBinding) -> SensorBinding:
    """Insert a binding and flush, so it has an id."""
    session.add(binding)
    session.flush()
    return binding


def open_bindings(*, session: Session, sensor_id: str) -> Sequence[SensorBinding]:
    """A sensor's bindings with no end yet (locked until the transaction ends)."""
    statement = (
        select(SensorBinding)
        .where(SensorBinding.sensor_id == sensor_id, col(SensorBinding.valid_to).is_(None))
        .with_for_update()
    )
    return session.exec(statement).all()


def sensor_bindings(*, session: Session, sensor_id: str) -> Sequence[SensorBinding]:
    """A sensor's bindings, oldest first."""
    statement = (
        select(SensorBinding)
        .where(SensorBinding.sensor_id == sensor_id)
        .order_by(col(SensorBinding.valid_from))
    )
    return session.exec(statement).all()


class BoundBy(NamedTuple):
    """A binding, the GLN of its sensor's owner and when that sensor was registered."""

    binding: SensorBinding
    owner_gln: str
    registered_at: dt.datetime


#: Built once (every verify runs it): building a statement costs more than running it.
_BINDINGS_OVERLAPPING = (
    select(SensorBinding, Participant.gln, Sensor.created_at)
    .join(Sensor, col(Sensor.sensor_id) == col(SensorBinding.sensor_id))
    .join(Participant, col(Participant.id) == col(Sensor.participant_id))
    .where(
        # kind IN and target IN, not a row-value IN: SQLite answers this from the index
        # (kind, target), a row-value IN only by a scan; pairs outside ``targets`` are dropped
        col(SensorBinding.kind).in_(bindparam("kinds", expanding=True)),
        col(SensorBinding.target).in_(bindparam("targets", expanding=True)),
        col(SensorBinding.valid_from) < bindparam("end"),
        or_(
            col(SensorBinding.valid_to).is_(None), col(SensorBinding.valid_to) > bindparam("start")
        ),
    )
    .order_by(col(SensorBinding.valid_from))
)


def bindings_overlapping(
    *,
    session: Session,
    targets: Iterable[tuple[BindingKind, str]],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[tuple[BindingKind, str], list[BoundBy]]:
    """The bindings to each (kind, target) whose range meets ``[start, end)``, oldest first,
    with their sensors' owners: one query for all the places and shipments of a unit's
    stays."""
    wanted = set(targets)
    if not wanted:
        return {}
    found: dict[tuple[BindingKind, str], list[BoundBy]] = {}
    params = {
        "kinds": sorted({kind for kind, _ in wanted}),
        "targets": sorted({target for _, target in wanted}),
        "start": start,
        "end": end,
    }
    for binding, owner_gln, registered_at in session.exec(_BINDINGS_OVERLAPPING, params=params):
        if (binding.kind, binding.target) in wanted:
            bound = BoundBy(binding, owner_gln, registered_at)
            found.setdefault((binding.kind, binding.target), []).append(bound)
    return found


def bindings_in_force(
    *, session: Session, at: dt.datetime
) -> Sequence[tuple[SensorBinding, Participant, dt.datetime | None]]:
    """The bindings in force at ``at`` of active sensors, each with its owner and the time
    of its sensor's latest reading (None if it never sent one)."""
    latest = (
        select(Reading.sensor_id, func.max(Reading.taken_at).label("last"))
        .group_by(col(Reading.sensor_id))
        .subquery()
    )
    statement = (
        select(SensorBinding, Participant, latest.c.last)
        .join(Sensor, col(Sensor.sensor_id) == col(SensorBinding.sensor_id))
        .join(Participant, col(Participant.id) == col(Sensor.participant_id))
        .outerjoin(latest, latest.c.sensor_id == col(SensorBinding.sensor_id))
        .where(
            col(Sensor.active),
            col(SensorBinding.valid_from) <= at,
            or_(col(SensorBinding.valid_to).is_(None), col(SensorBinding.valid_to) > at),
        )
        .order_by(col(SensorBinding.sensor_id))
    )
    return session.exec(statement).all()


# --- who holds a place or a shipment, and grants ----------------------------------------------


def stores_at_query(*, gln: str, location: str) -> SelectOfScalar[str]:
    """One store event of the participant at ``gln`` at ``location``: one query on the
    partial index ``ix_events_store_place``."""
    return (
        select(Event.event_id)
        .where(
            Event.type == EventType.STORE,
            Event.biz_location == location,
            Event.gln == gln,
        )
        .limit(1)
    )


def stores_at(*, session: Session, gln: str, location: str) -> bool:
    """Whether the participant at ``gln`` has stored anything at ``location`` (a fridge, a
    room of its site): its own store events name the places inside its site."""
    return session.exec(stores_at_query(gln=gln, location=location)).first() is not None


def shipment_parties(*, session: Session, sscc: str) -> set[str]:
    """The GLNs that shipped or received the container ``sscc`` (the source and destination
    of each of its ship events) and the one that holds it now (packed, not yet shipped)."""
    shipped = session.exec(
        select(Event.gln, Event.destination_gln).where(
            Event.sscc == sscc, Event.type == EventType.SHIP
        )
    ).all()
    parties = {gln for pair in shipped for gln in pair if gln is not None}
    container = session.get(Container, sscc)
    if container is not None:
        parties.add(container.holder_gln)
    return parties


def add_grant(*, session: Session, grant: SensorGrant) -> SensorGrant:
    """Insert a grant and flush, so it has an id."""
    session.add(grant)
    session.flush()
    return grant


def get_grant(*, session: Session, grant_id: int) -> SensorGrant | None:
    """A grant by id, locked until the transaction ends."""
    statement = select(SensorGrant).where(SensorGrant.id == grant_id).with_for_update()
    return session.exec(statement).first()


def has_active_grant(*, session: Session, grantee_id: int, kind: BindingKind, target: str) -> bool:
    """Whether a grant not revoked lets ``grantee_id``'s sensors measure at the target."""
    statement = select(SensorGrant.id).where(
        SensorGrant.grantee_id == grantee_id,
        SensorGrant.kind == kind,
        SensorGrant.target == target,
        col(SensorGrant.revoked_at).is_(None),
    )
    return session.exec(statement.limit(1)).first() is not None


def grants_for(
    *, session: Session, targets: Iterable[tuple[BindingKind, str]]
) -> dict[tuple[BindingKind, str], list[GrantRow[SensorGrant]]]:
    """Every grant, revoked or not, to each (kind, target), oldest first."""
    wanted = set(targets)
    if not wanted:
        return {}
    statement = grant_rows(SensorGrant).where(
        col(SensorGrant.kind).in_({kind for kind, _ in wanted}),
        col(SensorGrant.target).in_({target for _, target in wanted}),
    )
    found: dict[tuple[BindingKind, str], list[GrantRow[SensorGrant]]] = {}
    for row in session.exec(statement):
        key = (row[0].kind, row[0].target)
        if key in wanted:
            found.setdefault(key, []).append(GrantRow(*row))
    return found
