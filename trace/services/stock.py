"""A participant's stock at its own site, by product, lot and expiry: what the portal shows on
its home page and downloads as CSV.

Only units kept at the participant's site and still held by it count (``store.units.stock_query``),
so no other participant's unit that names the place shows up. Each line says how soon it
expires, so the page can highlight what a pharmacist should review first.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session

from medtrace.models import Participant
from medtrace.store import units as unit_store

EXPIRING_SOON = dt.timedelta(days=90)
"""Stock expiring within this is highlighted (a common pharmacy review horizon)."""

ExpiryStatus = Literal["expired", "soon", "ok"]


@dataclass(frozen=True)
class StockRow:
    """Units of one product, lot and expiry held at the participant's site."""

    gtin: str
    lot: str
    expiry: dt.date
    count: int
    status: ExpiryStatus
    """``expired`` before ``today``, ``soon`` within ``EXPIRING_SOON``, else ``ok``."""


def _status(expiry: dt.date, today: dt.date) -> ExpiryStatus:
    if expiry < today:
        return "expired"
    return "soon" if expiry - today <= EXPIRING_SOON else "ok"


def stock_of(*, session: Session, participant: Participant, today: dt.date) -> list[StockRow]:
    """The stock kept at the participant's site, one row per product, lot and expiry, soonest
    expiry first (then product and lot): the portal's stock table and its CSV."""
    units = unit_store.get_stock(
        session=session, location_gln=participant.gln, holder_gln=participant.gln
    )
    counts = Counter((u.gtin, u.lot, u.expiry) for u in units)
    return [
        StockRow(gtin, lot, expiry, count, _status(expiry, today))
        for (gtin, lot, expiry), count in sorted(counts.items(), key=lambda kv: (kv[0][2], kv[0]))
    ]
