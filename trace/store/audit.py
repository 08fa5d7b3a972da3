"""Reads for the audit of derived rows (``medtrace.services.audit``): pages of rows with the
ledger leaf each was derived from, in key order, so the audit streams a store of any size.

Every page is one short query (keyset pagination, never ``OFFSET``); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, Table, func, select, tuple_

from medtrace import ledger
from medtrace.models import Event, EventUnit, Unit
from medtrace.models.alerts import Alert, UnitHold
from medtrace.models.iot import Reading
from medtrace.models.recalls import Recall

EVENTS: Table = Event.__table__  # type: ignore[attr-defined]
READINGS: Table = Reading.__table__  # type: ignore[attr-defined]
ALERTS: Table = Alert.__table__  # type: ignore[attr-defined]
RECALLS: Table = Recall.__table__  # type: ignore[attr-defined]
UNITS: Table = Unit.__table__  # type: ignore[attr-defined]
_event_units: Table = EventUnit.__table__  # type: ignore[attr-defined]
_holds: Table = UnitHold.__table__  # type: ignore[attr-defined]
_leaves = ledger.leaves_table

#: The tables whose rows each carry the index of the leaf they were written from.
LEAF_TABLES = (EVENTS, READINGS, ALERTS, RECALLS)

UnitRef = tuple[str, str]
AnyRow = Row[*tuple[Any, ...]]
"""A row of any columns."""


def count_rows(conn: Connection) -> int:
    """How many rows the audit reads: every row of the leaf tables (alerts that have a leaf)
    and every unit; for a progress bar."""
    total = 0
    for table in (*LEAF_TABLES, UNITS):
        statement = select(func.count()).select_from(table)
        if table is ALERTS:
            statement = statement.where(table.c.leaf_index.is_not(None))
        total += int(conn.execute(statement).scalar_one())
    return total


def rows_with_leaves(conn: Connection, *, table: Table, after: int, limit: int) -> Sequence[AnyRow]:
    """Up to ``limit`` rows of ``table`` with ``leaf_index > after``, in leaf order, each with
    its leaf's bytes as ``leaf_data`` (None when the leaf is missing)."""
    statement = (
        select(table, _leaves.c.data.label("leaf_data"))
        .outerjoin(_leaves, _leaves.c.idx == table.c.leaf_index)
        .where(table.c.leaf_index > after)
        .order_by(table.c.leaf_index)
        .limit(limit)
    )
    return conn.execute(statement).all()


def unit_page(conn: Connection, *, after: UnitRef | None, limit: int) -> Sequence[AnyRow]:
    """Up to ``limit`` units after ``after`` in (GTIN, serial) order."""
    statement = select(UNITS).order_by(UNITS.c.gtin, UNITS.c.serial).limit(limit)
    if after is not None:
        statement = statement.where(tuple_(UNITS.c.gtin, UNITS.c.serial) > tuple_(*after))
    return conn.execute(statement).all()


def unit_histories(conn: Connection, *, first: UnitRef, last: UnitRef) -> Sequence[AnyRow]:
    """The leaves of the events of every unit from ``first`` to ``last`` (inclusive, in key
    order): rows of (gtin, serial, leaf_index, data), by unit then leaf index. One range scan
    of ``event_units``' primary key."""
    key = tuple_(_event_units.c.gtin, _event_units.c.serial)
    statement = (
        select(
            _event_units.c.gtin,
            _event_units.c.serial,
            _event_units.c.leaf_index,
            _leaves.c.data,
        )
        .outerjoin(_leaves, _leaves.c.idx == _event_units.c.leaf_index)
        .where(key >= tuple_(*first), key <= tuple_(*last))
        .order_by(_event_units.c.gtin, _event_units.c.serial, _event_units.c.leaf_index)
    )
    return conn.execute(statement).all()


def unit_holds(conn: Connection, *, first: UnitRef, last: UnitRef) -> Sequence[AnyRow]:
    """The quarantine holds of the units from ``first`` to ``last``: rows of (gtin, serial,
    leaf_index of the alert that holds it)."""
    key = tuple_(_holds.c.gtin, _holds.c.serial)
    statement = (
        select(_holds.c.gtin, _holds.c.serial, ALERTS.c.leaf_index)
        .join(ALERTS, ALERTS.c.id == _holds.c.alert_id)
        .where(key >= tuple_(*first), key <= tuple_(*last), ALERTS.c.leaf_index.is_not(None))
    )
    return conn.execute(statement).all()
