"""The audit of derived rows: every row a verdict is read from agrees with its ledger leaf.

The ledger's own audit (``medtrace.ledger.audit``) proves the leaves are the ones the log
signed. But the verify page, the quarantine rule and the alert lists read the store's rows,
not the leaves: a row changed in the database (a unit's holder, an event's place, a reading's
temperature, an alert's message) would pass that audit and still mislead every reader. This
module re-reads each derived row with the leaf it was written from and names every column that
differs (table, key, column, stored value, value from the leaf):

- ``events``: type, object, place, destination, time, station and EPCIS bizLocation against
  the signed event in the leaf;
- ``sensor_readings``: sensor, sequence, time, temperature and humidity against the signed
  reading;
- ``alerts``: kind, rule, severity, place, product, lot and time against the alert leaf, and
  the message, evidence and unit count against the SHA-256 the leaf carries;
- ``recalls``: lot, reason, place, station and time against the signed recall;
- ``units``: each unit's custody re-derived from the leaves of its own history (the events
  that named it or a case or pallet carrying it, and the alerts that held it): holder (every
  accepted event leaves its objects held by the participant at the event's GLN), state,
  destination, container, quarantine flag, lot and expiry. A state set by an unpack (the
  container's state, which the unit's own history does not carry) is not checked until the
  unit's next state-setting event.

It reads in pages (keyset pagination, one short query each), so memory stays flat on a store
of any size; ``progress`` is called with the number of rows each page read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, Table

from medtrace.epcis.document import biz_location
from medtrace.errors import MedtraceError
from medtrace.models import EventType, UnitState, as_utc
from medtrace.models.alerts import Alert
from medtrace.protocol.readings import SignedReading
from medtrace.schemas.capture import SignedEvent
from medtrace.services.alerts import alert_details, alert_leaf
from medtrace.store import audit as audit_store
from medtrace.store.audit import AnyRow

__all__ = ["Mismatch", "audit_derived", "count_derived"]

PAGE = 2000
"""Rows per query: large enough that the per-query cost fades, small enough to stream."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Mismatch:
    """A derived row that disagrees with its leaf: which row, which column, both values."""

    table: str
    key: str
    column: str
    stored: object
    recorded: object
    leaf_index: int | None

    def __str__(self) -> str:
        where = f"leaf {self.leaf_index}" if self.leaf_index is not None else "its leaves"
        return (
            f"{self.table} {self.key}: {self.column} is {_shown(self.stored)} in the store "
            f"but {_shown(self.recorded)} in {where}"
        )


def _shown(value: object) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return repr(value)


def count_derived(engine: Engine) -> int:
    """How many rows ``audit_derived`` reads (for a progress bar's total)."""
    with engine.connect() as conn:
        return audit_store.count_rows(conn)


def audit_derived(engine: Engine, *, progress: Progress | None = None) -> Iterator[Mismatch]:
    """Every mismatch between a derived row and its leaf, table by table in key order."""
    for table, check in _LEAF_CHECKS:
        yield from _audit_leaf_table(engine, table, check, progress)
    yield from _audit_units(engine, progress)


# --- rows written from one leaf each ----------------------------------------------------------

Differences = Iterator[tuple[str, object, object]]
"""(column, stored value, value from the leaf) of each column that differs."""


class _BadLeaf(Exception):
    """The leaf a row names is not the kind of leaf that row is written from."""


def _audit_leaf_table(
    engine: Engine,
    table: Table,
    check: Callable[[AnyRow, bytes], Differences],
    progress: Progress | None,
) -> Iterator[Mismatch]:
    after = -1
    while True:
        with engine.connect() as conn:
            rows = audit_store.rows_with_leaves(conn, table=table, after=after, limit=PAGE)
        for row in rows:
            yield from _row_mismatches(table.name, row, check)
        if progress is not None and rows:
            progress(len(rows))
        if len(rows) < PAGE:
            return
        after = rows[-1].leaf_index


def _row_mismatches(
    name: str, row: AnyRow, check: Callable[[AnyRow, bytes], Differences]
) -> Iterator[Mismatch]:
    key = _row_key(name, row)
    if row.leaf_data is None:
        yield Mismatch(name, key, "leaf_index", row.leaf_index, "no such leaf", row.leaf_index)
        return
    try:
        for column, stored, recorded in check(row, bytes(row.leaf_data)):
            yield Mismatch(name, key, column, stored, recorded, row.leaf_index)
    except (_BadLeaf, MedtraceError, ValueError, KeyError, TypeError) as exc:
        yield Mismatch(name, key, "leaf_index", row.leaf_index, f"not its leaf: {exc}", None)


def _row_key(name: str, row: AnyRow) -> str:
    if name == "events":
        return str(row.event_id)
    if name == "sensor_readings":
        return f"{row.sensor_id}#{row.seq}"
    return f"id={row.id}"


def _differ(pairs: Iterable[tuple[str, object, object]]) -> Differences:
    return ((c, s, r) for c, s, r in pairs if s != r and _plain(s) != _plain(r))


def _plain(value: object) -> object:
    """A value as both sides can hold it: enums by value, datetimes aware, numbers as float."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return as_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _leaf_member(data: bytes, member: str) -> dict[str, Any]:
    recorded = json.loads(data)
    if not isinstance(recorded, dict) or not isinstance(recorded.get(member), dict):
        raise _BadLeaf(f"the leaf has no {member!r} object")
    inner: dict[str, Any] = recorded[member]
    return inner


def _event_differences(row: AnyRow, data: bytes) -> Differences:
    try:
        event = SignedEvent.model_validate(_leaf_member(data, "event"))
    except (ValidationError, MedtraceError) as exc:  # a validator may raise InvalidInput
        raise _BadLeaf(f"its event does not parse ({exc})") from exc
    return _differ(
        (
            ("type", row.type, event.type),
            ("gtin", row.gtin, event.gtin),
            ("serial", row.serial, event.serial),
            ("sscc", row.sscc, event.sscc),
            ("gln", row.gln, event.gln),
            ("destination_gln", row.destination_gln, event.destination_gln),
            ("biz_location", row.biz_location, biz_location(event)),
            ("event_time", row.event_time, event.event_time),
            ("station_id", row.station_id, event.station_id),
        )
    )


def _reading_differences(row: AnyRow, data: bytes) -> Differences:
    try:
        reading = SignedReading.model_validate(_leaf_member(data, "reading"))
    except (ValidationError, MedtraceError) as exc:
        raise _BadLeaf(f"its reading does not parse ({exc})") from exc
    return _differ(
        (
            ("sensor_id", row.sensor_id, reading.sensor_id),
            ("seq", row.seq, reading.seq),
            ("taken_at", row.taken_at, reading.taken_at),
            ("temperature_c", row.temperature_c, reading.temperature_c),
            ("humidity_pct", row.humidity_pct, reading.humidity_pct),
        )
    )


#: The alert leaf's members and the columns they are written from.
_ALERT_COLUMNS = {
    "kind": "kind",
    "severity": "severity",
    "rule": "rule",
    "gln": "gln",
    "gtin": "gtin",
    "lot": "lot",
    "raised_at": "created_at",
    "details_sha256": "message/evidence/unit_count",
}


def _alert_differences(row: AnyRow, data: bytes) -> Differences:
    alert = Alert(**{k: v for k, v in row._mapping.items() if k != "leaf_data"})
    if alert_leaf(alert) == data:
        return
    stored = json.loads(alert_leaf(alert))["alert"]
    recorded = _leaf_member(data, "alert")
    for member, column in _ALERT_COLUMNS.items():
        if stored.get(member) != recorded.get(member):
            if member == "details_sha256":  # name what the hash covers, not the hash
                yield column, alert_details(alert).decode(), f"SHA-256 {recorded.get(member)}"
            else:
                yield column, getattr(alert, column), recorded.get(member)


def _recall_differences(row: AnyRow, data: bytes) -> Differences:
    event = _leaf_member(data, "event")
    if event.get("type") != "recall":
        raise _BadLeaf(f"a {event.get('type')!r} event, not a recall")
    return _differ(
        (
            ("gtin", row.gtin, event.get("gtin")),
            ("lot", row.lot, event.get("lot")),
            ("reason", row.reason, event.get("reason")),
            ("gln", row.gln, event.get("gln")),
            ("station_id", row.station_id, event.get("station_id")),
            ("event_time", row.event_time, dt.datetime.fromisoformat(event["event_time"])),
        )
    )


_LEAF_CHECKS: Sequence[tuple[Table, Callable[[AnyRow, bytes], Differences]]] = (
    (audit_store.EVENTS, _event_differences),
    (audit_store.READINGS, _reading_differences),
    (audit_store.ALERTS, _alert_differences),
    (audit_store.RECALLS, _recall_differences),
)


# --- units: custody re-derived from their histories -------------------------------------------

#: The state an event leaves every object it moves in (the target and what it carries).
_STATE_AFTER = {
    EventType.COMMISSION: UnitState.COMMISSIONED,
    EventType.SHIP: UnitState.IN_TRANSIT,
    EventType.RETURN: UnitState.RETURNED,
    EventType.RECEIVE: UnitState.RECEIVED,
    EventType.STORE: UnitState.STORED,
    EventType.DISPENSE: UnitState.DISPENSED,
    EventType.DESTROY: UnitState.DESTROYED,
    EventType.EXPORT: UnitState.EXPORTED,
    EventType.DECOMMISSION: UnitState.DECOMMISSIONED,
}


@dataclass
class _Derived:
    """A unit's custody as its history says, and the leaf each value comes from.

    ``state`` is None while it cannot be told from the unit's own history (after an unpack).
    """

    holder_gln: str | None = None
    state: UnitState | None = None
    destination_gln: str | None = None
    parent_sscc: str | None = None
    quarantined: bool = False
    lot: str | None = None
    expiry: dt.date | None = None
    source: dict[str, int] = field(default_factory=dict)
    unreadable: list[int] = field(default_factory=list)

    def set(self, index: int, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)
            self.source[name] = index


def _apply(derived: _Derived, unit: audit_store.UnitRef, index: int, event: SignedEvent) -> None:
    """What one event of its history did to the unit (named by it or carrying it)."""
    derived.set(index, holder_gln=event.gln)
    kind = event.type
    listed = [(c.gtin, c.serial) for c in event.children or ()]
    if kind is EventType.COMMISSION:
        derived.set(index, lot=event.lot, expiry=event.expiry, quarantined=False, parent_sscc=None)
    if kind is EventType.PACK and unit in listed:
        derived.set(index, state=UnitState.PACKED, parent_sscc=event.sscc, destination_gln=None)
    elif kind is EventType.UNPACK:
        if unit in listed or (not listed and derived.parent_sscc == event.sscc):
            derived.set(index, parent_sscc=None, state=None)  # the container's state
    elif kind in (EventType.QUARANTINE, EventType.RELEASE):
        derived.set(index, quarantined=kind is EventType.QUARANTINE)
    elif kind in _STATE_AFTER:
        derived.set(index, state=_STATE_AFTER[kind])
        if kind in (EventType.SHIP, EventType.RETURN):
            derived.set(index, destination_gln=event.destination_gln)
        elif kind in (EventType.RECEIVE, EventType.COMMISSION):
            derived.set(index, destination_gln=None)


def _audit_units(engine: Engine, progress: Progress | None) -> Iterator[Mismatch]:
    after: audit_store.UnitRef | None = None
    while True:
        with engine.connect() as conn:
            units = audit_store.unit_page(conn, after=after, limit=PAGE)
            if not units:
                return
            first, last = (units[0].gtin, units[0].serial), (units[-1].gtin, units[-1].serial)
            histories = audit_store.unit_histories(conn, first=first, last=last)
            holds = audit_store.unit_holds(conn, first=first, last=last)
        derived = _derive(histories, holds)
        for unit in units:
            yield from _unit_mismatches(unit, derived.get((unit.gtin, unit.serial)))
        if progress is not None:
            progress(len(units))
        if len(units) < PAGE:
            return
        after = last


def _derive(histories: Sequence[AnyRow], holds: Sequence[AnyRow]) -> dict[Any, _Derived]:
    """Each unit's custody from its events' leaves and its holds' alert leaves, in leaf
    order (a leaf shared by many units, a pallet's move, is parsed once)."""
    steps: dict[audit_store.UnitRef, list[tuple[int, SignedEvent | str]]] = {}
    parsed: dict[int, SignedEvent | str] = {}
    for gtin, serial, index, data in histories:
        if index not in parsed:
            parsed[index] = _parse_event_leaf(data)
        steps.setdefault((gtin, serial), []).append((index, parsed[index]))
    for gtin, serial, index in holds:
        steps.setdefault((gtin, serial), []).append((index, _HOLD))
    derived: dict[Any, _Derived] = {}
    for unit, history in steps.items():
        derived[unit] = state = _Derived()
        for index, step in sorted(history, key=lambda step: step[0]):
            if isinstance(step, SignedEvent):
                _apply(state, unit, index, step)
            elif step == _HOLD:  # a cold-chain alert quarantined it
                state.set(index, quarantined=True)
            else:
                state.unreadable.append(index)
    return derived


_HOLD = "hold"
_UNREADABLE = "unreadable"


def _parse_event_leaf(data: bytes | None) -> SignedEvent | str:
    try:
        return SignedEvent.model_validate(_leaf_member(bytes(data or b""), "event"))
    except (ValueError, MedtraceError, _BadLeaf):  # ValidationError is a ValueError
        return _UNREADABLE


_UNIT_COLUMNS = (
    "holder_gln",
    "state",
    "destination_gln",
    "parent_sscc",
    "quarantined",
    "lot",
    "expiry",
)


def _unit_mismatches(unit: AnyRow, derived: _Derived | None) -> Iterator[Mismatch]:
    key = f"{unit.gtin}/{unit.serial}"
    if derived is None or derived.holder_gln is None:
        yield Mismatch("units", key, "history", unit.state, "no event of this unit", None)
        return
    if derived.unreadable:  # the custody cannot be re-derived past it: compare nothing
        for index in derived.unreadable:
            yield Mismatch("units", key, "history", f"leaf {index}", "not an event", index)
        return
    for column in _UNIT_COLUMNS:
        if column == "state" and derived.state is None:
            continue
        stored, recorded = getattr(unit, column), getattr(derived, column)
        if stored != recorded and _plain(stored) != _plain(recorded):
            yield Mismatch("units", key, column, stored, recorded, derived.source.get(column))
