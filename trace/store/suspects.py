"""Suspicion marks on units, and the public verifications of dispensed units."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Table, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from medtrace.custody import UnitKey
from medtrace.models.suspects import PublicVerificationCount, UnitSuspicion
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
_counts: Table = PublicVerificationCount.__table__  # type: ignore[attr-defined]
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
_COUNTS_SINCE = (
    select(_counts.c.place_hash, func.sum(_counts.c.count))
    .where(
        _counts.c.gtin == bindparam("gtin"),
        _counts.c.serial == bindparam("serial"),
        _counts.c.minute >= bindparam("since"),
    )
    .group_by(_counts.c.place_hash)
)
#: (gtin, serial, minute, place_hash): whose requests, in which minute, from where.
MinuteKey = tuple[str, str, dt.datetime, str]


def get_suspicion_reasons(*, session: Session, gtin: str, serial: str) -> list[str]:
    """Why a unit is suspect, oldest first (empty: it is not)."""
    rows = session.execute(_REASONS, {"gtin": gtin, "serial": serial})
    return [reason for (reason,) in rows]


def add_verification_counts(*, conn: Connection, counts: Mapping[MinuteKey, int]) -> None:
    """Add public verification counts of dispensed units, per (gtin, serial, minute, hashed
    place), to those recorded, in the caller's transaction: one executemany upsert."""
    if not counts:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_counts)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[c.name for c in _counts.primary_key.columns],
            set_={"count": _counts.c.count + statement.excluded.count},
        ),
        [
            {"gtin": g, "serial": s, "minute": m, "place_hash": p, "count": n}
            for (g, s, m, p), n in counts.items()
        ],
    )


def verifications_by_place(
    *, session: Session, gtin: str, serial: str, since: dt.datetime
) -> dict[str, int]:
    """The unit's recorded public verifications in the minutes from ``since`` on, summed per
    (hashed) place: one row per place and minute, however often the pack is verified."""
    params = {"gtin": gtin, "serial": serial, "since": since}
    return {place: int(count) for place, count in session.execute(_COUNTS_SINCE, params)}


def is_marked(*, session: Session, gtin: str, serial: str, dedup_key: str) -> bool:
    """Whether the unit was already marked suspect for the situation ``dedup_key``."""
    params = {"gtin": gtin, "serial": serial, "dedup_key": dedup_key}
    return session.execute(_MARKED, params).first() is not None
