"""Units and containers (cases, pallets) and their current custody state.

The capture path reads and writes them through SQLAlchemy Core in bulk: one query for all
the units a batch names, one for its containers, one per container whose contents it opens,
and executemany writes. Reads for custody lock their rows (``FOR UPDATE`` on PostgreSQL,
taken in key order so two batches never deadlock on the same rows); SQLite needs no row
lock, as its writer holds the database from the start of the batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    update,
)
from sqlmodel import Session, col
from sqlmodel import select as select_model
from sqlmodel.sql.expression import SelectOfScalar

from medtrace.custody import FINAL_STATES, MOVING_STATES, ContainerKey, Custody, Key, UnitKey
from medtrace.ledger import insert_rows
from medtrace.models import Container, Unit, UnitState
from medtrace.models.alerts import Alert, UnitHold
from medtrace.models.recalls import Recall

_units: Table = Unit.__table__  # type: ignore[attr-defined]
_containers: Table = Container.__table__  # type: ignore[attr-defined]
_recalls: Table = Recall.__table__  # type: ignore[attr-defined]
#: Whether a unit's lot is recalled, read with the unit (the recall is not a unit column: a
#: recall flags the whole lot in one row).
_RECALLED = (
    exists()
    .where(_recalls.c.gtin == _units.c.gtin, _recalls.c.lot == _units.c.lot)
    .label("recalled")
)
_CUSTODY_COLUMNS = (
    "state",
    "holder_gln",
    "destination_gln",
    "location_gln",
    "parent_sscc",
    "quarantined",
)


#: Built once (every verify runs it): building a statement costs more than running it.
_UNIT_BY_KEY = select_model(Unit).where(
    col(Unit.gtin) == bindparam("gtin"), col(Unit.serial) == bindparam("serial")
)


def get_unit(*, session: Session, gtin: str, serial: str) -> Unit | None:
    """A unit by its GS1 key."""
    return session.exec(_UNIT_BY_KEY, params={"gtin": gtin, "serial": serial}).first()


def lot_units_query(*, gtin: str, lot: str) -> SelectOfScalar[Unit]:
    """Every unit of a lot: one query on ``ix_units_gtin_lot``."""
    return (
        select_model(Unit)
        .where(col(Unit.gtin) == gtin, col(Unit.lot) == lot)
        .order_by(col(Unit.serial))
    )


def get_lot_units(*, session: Session, gtin: str, lot: str) -> Sequence[Unit]:
    """Every unit of a lot (``lot_units_query``)."""
    return session.exec(lot_units_query(gtin=gtin, lot=lot)).all()


def lot_summary_query(*, gtin: str, lot: str) -> Select[Any]:
    """A lot's units counted by (state, holder GLN, quarantined): one grouped query on
    ``ix_units_gtin_lot``, however many units the lot has."""
    return (
        select(_units.c.state, _units.c.holder_gln, _units.c.quarantined, func.count())
        .where(_units.c.gtin == gtin, _units.c.lot == lot)
        .group_by(_units.c.state, _units.c.holder_gln, _units.c.quarantined)
    )


def lot_summary(*, session: Session, gtin: str, lot: str) -> list[tuple[UnitState, str, bool, int]]:
    """The counts of ``lot_summary_query``."""
    rows = session.connection().execute(lot_summary_query(gtin=gtin, lot=lot))
    return [(UnitState(state), holder, bool(held), count) for state, holder, held, count in rows]


def get_lot_units_page(
    *, session: Session, gtin: str, lot: str, after_serial: str, limit: int
) -> Sequence[Unit]:
    """Up to ``limit`` units of a lot whose serial sorts after ``after_serial``, in serial
    order (keyset paging on ``ix_units_gtin_lot``: as fast on the last page as the first)."""
    statement = (
        lot_units_query(gtin=gtin, lot=lot).where(col(Unit.serial) > after_serial).limit(limit)
    )
    return session.exec(statement).all()


def stock_query(*, location_gln: str, holder_gln: str) -> SelectOfScalar[Unit]:
    """The units kept at a place and still held there by ``holder_gln``: one query on
    ``ix_units_location``. The holder is named too, so that no other participant's unit
    that names this place can show up in its owner's stock."""
    held = (UnitState.COMMISSIONED, UnitState.PACKED, UnitState.RECEIVED, UnitState.STORED)
    return (
        select_model(Unit)
        .where(
            col(Unit.location_gln) == location_gln,
            col(Unit.state).in_(held),
            col(Unit.holder_gln) == holder_gln,
        )
        .order_by(col(Unit.gtin), col(Unit.serial))
    )


def get_stock(*, session: Session, location_gln: str, holder_gln: str) -> Sequence[Unit]:
    """A place's stock held by ``holder_gln`` (``stock_query``)."""
    return session.exec(stock_query(location_gln=location_gln, holder_gln=holder_gln)).all()


def moving_query(*, holder_gln: str) -> SelectOfScalar[Unit]:
    """The units a participant has shipped (or returned) that have not arrived yet: one
    query on ``ix_units_holder_gln``."""
    return (
        select_model(Unit)
        .where(col(Unit.holder_gln) == holder_gln, col(Unit.state).in_(MOVING_STATES))
        .order_by(col(Unit.updated_at), col(Unit.gtin), col(Unit.serial))
    )


def get_moving(*, session: Session, holder_gln: str) -> Sequence[Unit]:
    """What ``moving_query`` finds."""
    return session.exec(moving_query(holder_gln=holder_gln)).all()


def _locked(conn: Connection, statement: Select[Any]) -> Select[Any]:
    return statement.with_for_update() if conn.dialect.name == "postgresql" else statement


def _custody(row: Any, *, unit: bool) -> Custody:
    return Custody(
        state=UnitState(row.state),
        holder_gln=row.holder_gln,
        destination_gln=row.destination_gln,
        location_gln=row.location_gln,
        parent_sscc=row.parent_sscc,
        quarantined=bool(row.quarantined),
        lot=row.lot if unit else None,
        expiry=row.expiry if unit else None,
        recalled=bool(row.recalled) if unit else False,
    )


#: Keys per lookup: PostgreSQL refuses a very long ``IN`` list of row values (its parser's
#: stack), so a 10 000-event EPCIS document is read in slices, in key order (lock order).
LOOKUP_SLICE = 1000


def slices(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``keys`` in slices of ``LOOKUP_SLICE``."""
    for start in range(0, len(keys), LOOKUP_SLICE):
        yield keys[start : start + LOOKUP_SLICE]


def unit_keys_in(
    gtin: ColumnElement[Any], serial: ColumnElement[Any], pairs: Iterable[tuple[str, str]]
) -> ColumnElement[bool]:
    """``(gtin, serial) IN pairs``, written as ``gtin = g AND serial IN (...)`` per GTIN, the
    serials written into the SQL as literals.

    A batch names a few GTINs and many serials. PostgreSQL plans a row-value ``IN`` of 500
    pairs as 500 OR-ed index conditions (about 50 ms, measured); per GTIN it walks the
    primary key (about 2 ms). The serials are literals because psycopg prepares a statement
    run five times, and PostgreSQL then caches a generic plan that ignores the values: on a
    growing table that plan walked every unit of the GTIN and filtered (30 ms at 5 000 units,
    rising with each batch). A statement whose text carries its keys is planned for them.
    """
    serials: dict[str, list[str]] = {}
    for g, s in pairs:
        serials.setdefault(g, []).append(s)
    return or_(
        false(),
        *(
            and_(gtin == g, serial.in_(bindparam(None, these, literal_execute=True)))
            for g, these in serials.items()
        ),
    )


def lock_units(*, conn: Connection, keys: Collection[UnitKey]) -> dict[Key, Custody]:
    """The custody of the units among ``keys`` that exist, their rows locked."""
    found: dict[Key, Custody] = {}
    for pairs in slices(sorted((k.gtin, k.serial) for k in keys)):
        statement = (
            select(_units, _RECALLED)
            .where(unit_keys_in(_units.c.gtin, _units.c.serial, pairs))
            .order_by(_units.c.gtin, _units.c.serial)
        )
        for row in conn.execute(_locked(conn, statement)):
            found[UnitKey(row.gtin, row.serial)] = _custody(row, unit=True)
    return found


def lock_containers(*, conn: Connection, keys: Collection[ContainerKey]) -> dict[Key, Custody]:
    """The custody of the containers among ``keys`` that exist, their rows locked."""
    found: dict[Key, Custody] = {}
    for ssccs in slices(sorted(k.sscc for k in keys)):
        statement = (
            select(_containers).where(_containers.c.sscc.in_(ssccs)).order_by(_containers.c.sscc)
        )
        for row in conn.execute(_locked(conn, statement)):
            found[ContainerKey(row.sscc)] = _custody(row, unit=False)
    return found


def lock_contents(*, conn: Connection, sscc: str) -> dict[Key, Custody]:
    """What container ``sscc`` directly holds (units and containers), rows locked."""
    found: dict[Key, Custody] = {}
    units = (
        select(_units, _RECALLED)
        .where(_units.c.parent_sscc == sscc)
        .order_by(_units.c.gtin, _units.c.serial)
    )
    for row in conn.execute(_locked(conn, units)):
        found[UnitKey(row.gtin, row.serial)] = _custody(row, unit=True)
    inner = (
        select(_containers).where(_containers.c.parent_sscc == sscc).order_by(_containers.c.sscc)
    )
    for row in conn.execute(_locked(conn, inner)):
        found[ContainerKey(row.sscc)] = _custody(row, unit=False)
    return found


def save_custody(
    *, conn: Connection, changes: Mapping[Key, Custody], created: Collection[Key], now: dt.datetime
) -> None:
    """Write custody changes: insert the ``created`` objects (bulk), update the others
    (executemany)."""
    for table, kind in ((_units, UnitKey), (_containers, ContainerKey)):
        new_rows: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key, after in changes.items():
            if not isinstance(key, kind):
                continue
            values: dict[str, Any] = {c: getattr(after, c) for c in _CUSTODY_COLUMNS}
            values["state"] = after.state.value
            values["updated_at"] = now
            if isinstance(key, UnitKey):
                identity: dict[str, Any] = {"gtin": key.gtin, "serial": key.serial}
            else:
                assert isinstance(key, ContainerKey)
                identity = {"sscc": key.sscc}
            if key in created:
                if isinstance(key, UnitKey):
                    values |= {"lot": after.lot, "expiry": after.expiry}
                new_rows.append(identity | values)
            else:
                updates.append({f"k_{name}": value for name, value in identity.items()} | values)
        if new_rows:  # every row has the same keys, in the same order
            insert_rows(conn, table, tuple(new_rows[0]), [tuple(r.values()) for r in new_rows])
        if updates:
            where = [c == bindparam(f"k_{c.name}") for c in table.primary_key.columns]
            conn.execute(update(table).where(*where), updates)


def quarantine_units(
    *, conn: Connection, keys: Collection[tuple[str, str]], now: dt.datetime
) -> list[tuple[str, str]]:
    """Set the quarantine flag of the units ``(gtin, serial)`` still in circulation (not
    dispensed, destroyed, ...), their rows locked in key order as capture locks them; return
    those units, which the caller records as held."""
    live = [s.value for s in UnitState if s not in FINAL_STATES]
    found: list[tuple[str, str]] = []
    for pairs in slices(sorted(set(keys))):
        statement = (
            select(_units.c.gtin, _units.c.serial)
            .where(unit_keys_in(_units.c.gtin, _units.c.serial, pairs), _units.c.state.in_(live))
            .order_by(_units.c.gtin, _units.c.serial)
        )
        found.extend((row.gtin, row.serial) for row in conn.execute(_locked(conn, statement)))
    if found:
        conn.execute(
            update(_units)
            .where(_units.c.gtin == bindparam("k_gtin"), _units.c.serial == bindparam("k_serial"))
            .values(quarantined=True, updated_at=now),
            [{"k_gtin": g, "k_serial": s} for g, s in found],
        )
    return found


def latest_hold(*, session: Session, gtin: str, serial: str) -> Alert | None:
    """The alert of the unit's most recent quarantine hold, if an alert ever held it."""
    statement = (
        select_model(Alert)
        .join(UnitHold, col(UnitHold.alert_id) == col(Alert.id))
        .where(UnitHold.gtin == gtin, UnitHold.serial == serial)
        .order_by(col(UnitHold.id).desc())
        .limit(1)
    )
    return session.exec(statement).first()
