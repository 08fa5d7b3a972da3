"""Cases and pallets as a reader sees them: one container, everything inside it at any depth,
and the events that moved it.

A container's contents are read level by level (``containers.parent_sscc`` is indexed), then
its units are counted per case, GTIN and lot in one grouped query per slice of cases: the
answer grows with the number of cases and lots, never with the number of units.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, func, select
from sqlmodel import Session, col
from sqlmodel import select as select_model

from medtrace.models import Container, Event, EventType, Unit
from medtrace.models.recalls import Recall
from medtrace.store.units import slices

_units: Table = Unit.__table__  # type: ignore[attr-defined]
_containers: Table = Container.__table__  # type: ignore[attr-defined]
_recalls: Table = Recall.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UnitCount:
    """Units of one GTIN and lot packed directly in the case ``parent_sscc``."""

    parent_sscc: str
    gtin: str
    lot: str
    expiry: dt.date
    units: int


def get_container(*, session: Session, sscc: str) -> Container | None:
    """A case or pallet by SSCC."""
    return session.get(Container, sscc)


def get_inner_containers(*, session: Session, sscc: str) -> list[tuple[str, str]]:
    """Every case inside ``sscc`` at any depth, as (sscc, parent_sscc), parents before their
    children: one query per level."""
    found: list[tuple[str, str]] = []
    seen = {sscc}
    level = [sscc]
    conn = session.connection()
    while level:
        below: list[str] = []
        for part in slices(level):
            statement = (
                select(_containers.c.sscc, _containers.c.parent_sscc)
                .where(_containers.c.parent_sscc.in_(part))
                .order_by(_containers.c.sscc)
            )
            for child, parent in conn.execute(statement).tuples():
                if child not in seen:  # custody never nests a case in itself; stay finite
                    seen.add(child)
                    found.append((child, parent))
                    below.append(child)
        level = below
    return found


def count_units(*, session: Session, ssccs: Sequence[str]) -> list[UnitCount]:
    """The units packed directly in each of ``ssccs``, counted per GTIN and lot."""
    conn = session.connection()
    counts: list[UnitCount] = []
    for part in slices(sorted(ssccs)):
        statement = (
            select(
                _units.c.parent_sscc,
                _units.c.gtin,
                _units.c.lot,
                func.min(_units.c.expiry),
                func.count(),
            )
            .where(_units.c.parent_sscc.in_(part))
            .group_by(_units.c.parent_sscc, _units.c.gtin, _units.c.lot)
        )
        counts.extend(UnitCount(*row) for row in conn.execute(statement).tuples())
    return counts


def recalled_lots(*, session: Session, gtins: Collection[str]) -> set[tuple[str, str]]:
    """The recalled (gtin, lot) pairs among ``gtins``' lots."""
    conn = session.connection()
    found: set[tuple[str, str]] = set()
    for part in slices(sorted(gtins)):
        statement = select(_recalls.c.gtin, _recalls.c.lot).where(_recalls.c.gtin.in_(part))
        found.update(conn.execute(statement).tuples())
    return found


def get_container_events(*, session: Session, sscc: str, since: int = 0) -> Sequence[Event]:
    """The events naming ``sscc`` from leaf ``since`` on, in ledger order."""
    statement = (
        select_model(Event)
        .where(col(Event.sscc) == sscc, col(Event.leaf_index) >= since)
        .order_by(col(Event.leaf_index))
    )
    return session.exec(statement).all()


def get_pack_events(*, session: Session, sscc: str) -> Sequence[Event]:
    """The pack events into ``sscc``, newest first (their children are in their leaves)."""
    statement = (
        select_model(Event)
        .where(col(Event.sscc) == sscc, col(Event.type) == EventType.PACK)
        .order_by(col(Event.leaf_index).desc())
    )
    return session.exec(statement).all()
