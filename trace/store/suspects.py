"""Suspicion marks on units, and the public verifications of dispensed units."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, Table, insert, select, tuple_
from sqlmodel import Session, col
from sqlmodel import select as select_model

from medtrace.custody import UnitKey
from medtrace.models import as_utc
from medtrace.models.suspects import PublicVerification, UnitSuspicion
from medtrace.store.units import slices

_suspicions: Table = UnitSuspicion.__table__  # type: ignore[attr-defined]


def mark_units(
    *, conn: Connection, units: Sequence[UnitKey], rule: str, reason: str, dedup_key: str
) -> None:
    """Mark ``units`` suspect for one situation (``dedup_key``); units marked for it before
    keep their first mark."""
    for part in slices(sorted(set(units), key=lambda u: (u.gtin, u.serial))):
        marked = set(
            conn.execute(
                select(_suspicions.c.gtin, _suspicions.c.serial).where(
                    _suspicions.c.dedup_key == dedup_key,
                    tuple_(_suspicions.c.gtin, _suspicions.c.serial).in_(
                        [(u.gtin, u.serial) for u in part]
                    ),
                )
            ).tuples()
        )
        rows = [
            {
                "gtin": u.gtin,
                "serial": u.serial,
                "rule": rule,
                "reason": reason,
                "dedup_key": dedup_key,
                "created_at": dt.datetime.now(dt.UTC),
            }
            for u in part
            if (u.gtin, u.serial) not in marked
        ]
        if rows:
            conn.execute(insert(_suspicions), rows)


def get_suspicion_reasons(*, session: Session, gtin: str, serial: str) -> list[str]:
    """Why a unit is suspect, oldest first (empty: it is not)."""
    statement = (
        select_model(UnitSuspicion.reason)
        .where(col(UnitSuspicion.gtin) == gtin, col(UnitSuspicion.serial) == serial)
        .order_by(col(UnitSuspicion.id))
    )
    return list(session.exec(statement).all())


def add_verification(
    *, session: Session, gtin: str, serial: str, place_hash: str, at: dt.datetime
) -> None:
    """Count one public verification of a dispensed unit."""
    session.add(PublicVerification(gtin=gtin, serial=serial, place_hash=place_hash, verified_at=at))


def get_verifications(
    *, session: Session, gtin: str, serial: str, since: dt.datetime
) -> list[tuple[dt.datetime, str]]:
    """The unit's public verifications since ``since``: (time, place hash), oldest first."""
    statement = (
        select_model(PublicVerification.verified_at, PublicVerification.place_hash)
        .where(
            col(PublicVerification.gtin) == gtin,
            col(PublicVerification.serial) == serial,
            col(PublicVerification.verified_at) >= since,
        )
        .order_by(col(PublicVerification.verified_at))
    )
    return [(as_utc(at), place) for at, place in session.exec(statement).all()]
