"""Captured events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from medtrace.models import Event


def get_event(*, session: Session, event_id: str) -> Event | None:
    """An event by id."""
    return session.get(Event, event_id)


def get_unit_events(*, session: Session, gtin: str, serial: str) -> Sequence[Event]:
    """A unit's events in ledger order (one indexed query)."""
    statement = (
        select(Event)
        .where(Event.gtin == gtin, Event.serial == serial)
        .order_by(col(Event.leaf_index))
    )
    return session.exec(statement).all()


def add_events(*, session: Session, events: Sequence[Event]) -> None:
    """Insert events."""
    session.add_all(events)
