"""A regulator's lot investigation: every unit of a lot, its state, its holder, its
quarantine, and the lot's recall and alerts (excursions among them).

A lot may have 100 000 units, so the page is built from one grouped count (units by state,
holder and quarantine) and one page of units at a time (keyset paging by serial), never from
the whole lot in memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session

from medtrace.models import Participant, Unit, UnitState
from medtrace.models.recalls import Recall
from medtrace.schemas.alerts import AlertPublic
from medtrace.services.alerts import list_alerts
from medtrace.store import recalls as recall_store
from medtrace.store import units as unit_store

UNITS_PER_PAGE = 500


@dataclass(frozen=True)
class HolderCount:
    """How many of the lot's units one participant holds (or is shipping)."""

    gln: str
    name: str
    units: int


@dataclass(frozen=True)
class LotInvestigation:
    """What the lot investigation page shows."""

    units: int
    by_state: dict[UnitState, int]
    quarantined: int
    holders: list[HolderCount]
    recall: Recall | None
    alerts: list[AlertPublic]
    page: list[Unit]
    holder_names: dict[str, str]
    next_after: str | None
    """The serial to continue after, when more units follow this page."""


def investigate_lot(
    *, session: Session, participant: Participant, gtin: str, lot: str, after: str = ""
) -> LotInvestigation:
    """The lot's counts, recall and alerts, and the page of units after serial ``after``."""
    summary = unit_store.lot_summary(session=session, gtin=gtin, lot=lot)
    by_state: Counter[UnitState] = Counter()
    by_holder: Counter[str] = Counter()
    quarantined = 0
    for state, holder, held, count in summary:
        by_state[state] += count
        by_holder[holder] += count
        quarantined += count if held else 0
    page = list(
        unit_store.get_lot_units_page(
            session=session, gtin=gtin, lot=lot, after_serial=after, limit=UNITS_PER_PAGE + 1
        )
    )
    more = len(page) > UNITS_PER_PAGE
    page = page[:UNITS_PER_PAGE]
    names = recall_store.participants_by_gln(session=session, glns=by_holder)
    holder_names = {gln: names[gln].name if gln in names else gln for gln in by_holder}
    return LotInvestigation(
        units=sum(by_state.values()),
        by_state=dict(by_state),
        quarantined=quarantined,
        holders=[HolderCount(gln, holder_names[gln], n) for gln, n in by_holder.most_common()],
        recall=recall_store.get_recall(session=session, gtin=gtin, lot=lot),
        alerts=list_alerts(session=session, participant=participant, gtin=gtin, lot=lot),
        page=page,
        holder_names=holder_names,
        next_after=page[-1].serial if more else None,
    )
