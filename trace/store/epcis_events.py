"""EPCIS events as captured (``epcis_events``): read by id, written beside their events."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlmodel import Session, col
from sqlmodel import select as select_model

from medtrace.models import Event
from medtrace.models.epcis import CapturedEvent
from medtrace.store.units import slices


def get_captured(*, session: Session, event_ids: Collection[str]) -> dict[str, CapturedEvent]:
    """The captured events among ``event_ids``, by id (one query per slice)."""
    found: dict[str, CapturedEvent] = {}
    for ids in slices(sorted(event_ids)):
        statement = select_model(CapturedEvent).where(col(CapturedEvent.event_id).in_(ids))
        found |= {row.event_id: row for row in session.exec(statement)}
    return found


def ids_in_use(*, session: Session, event_ids: Collection[str]) -> set[str]:
    """Those of ``event_ids`` that some recorded event already carries as its EPCIS id
    (whoever captured it, by EPCIS or by a station)."""
    used: set[str] = set()
    for ids in slices(sorted(event_ids)):
        statement = select(col(Event.epcis_id)).where(col(Event.epcis_id).in_(ids)).distinct()
        used |= set(session.connection().execute(statement).scalars())
    return used


def add_captured(*, session: Session, rows: Sequence[CapturedEvent]) -> None:
    """Store captured events (inside the capture's transaction)."""
    session.add_all(rows)
    session.flush()
