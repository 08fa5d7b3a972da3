"""Suspicion marks on units, and the public verifications of dispensed units."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Table, bindparam, func, insert, select
from sqlmodel import Session

from medtrace.custody import UnitKey
from medtrace.models.suspects import PublicVerification, UnitSuspicion
from medtrace.store.units import slices, unit_keys_in

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
                    unit_keys_in(
                        _suspicions.c.gtin, _suspicions.c.serial, [(u.gtin, u.serial) for u in part]
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


#: Statements every public verification runs, built once: building a statement costs more
#: than running it on an index.
_verifications: Table = PublicVerification.__table__  # type: ignore[attr-defined]
_REASONS = (
    select(_suspicions.c.reason)
    .where(_suspicions.c.gtin == bindparam("gtin"), _suspicions.c.serial == bindparam("serial"))
    .order_by(_suspicions.c.id)
)
_MARKED = (
    select(_suspicions.c.id)
    .where(
        _suspicions.c.dedup_key == bindparam("dedup_key"),
        _suspicions.c.gtin == bindparam("gtin"),
        _suspicions.c.serial == bindparam("serial"),
    )
    .limit(1)
)
_ADD_VERIFICATION = insert(_verifications)
_VERIFICATIONS_SINCE = (
    select(_verifications.c.place_hash, func.count())
    .where(
        _verifications.c.gtin == bindparam("gtin"),
        _verifications.c.serial == bindparam("serial"),
        _verifications.c.verified_at >= bindparam("since"),
    )
    .group_by(_verifications.c.place_hash)
)


def get_suspicion_reasons(*, session: Session, gtin: str, serial: str) -> list[str]:
    """Why a unit is suspect, oldest first (empty: it is not)."""
    rows = session.execute(_REASONS, {"gtin": gtin, "serial": serial})
    return [reason for (reason,) in rows]


def add_verifications(*, conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Record public verifications of dispensed units (``gtin``, ``serial``, ``place_hash``,
    ``verified_at`` each), in the caller's transaction: one executemany."""
    if rows:
        conn.execute(_ADD_VERIFICATION, list(rows))


def verifications_by_place(
    *, session: Session, gtin: str, serial: str, since: dt.datetime
) -> dict[str, int]:
    """The unit's recorded public verifications since ``since``, counted per (hashed) place
    by the database, so that a much-verified pack costs no more than a fresh one."""
    params = {"gtin": gtin, "serial": serial, "since": since}
    return {place: count for place, count in session.execute(_VERIFICATIONS_SINCE, params)}


def is_marked(*, session: Session, gtin: str, serial: str, dedup_key: str) -> bool:
    """Whether the unit was already marked suspect for the situation ``dedup_key``."""
    params = {"gtin": gtin, "serial": serial, "dedup_key": dedup_key}
    return session.execute(_MARKED, params).first() is not None
