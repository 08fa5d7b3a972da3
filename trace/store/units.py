"""Units and their current custody state."""

from __future__ import annotations

from sqlmodel import Session, select

from medtrace.models import Unit


def get_unit(*, session: Session, gtin: str, serial: str, for_update: bool = False) -> Unit | None:
    """A unit by its GS1 key; ``for_update`` locks its row until the transaction ends
    (PostgreSQL), so two conflicting moves of the same unit cannot both succeed."""
    statement = select(Unit).where(Unit.gtin == gtin, Unit.serial == serial)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def add_unit(*, session: Session, unit: Unit) -> Unit:
    """Insert a newly commissioned unit."""
    session.add(unit)
    return unit
