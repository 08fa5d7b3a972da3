"""Recalls, and the lot-wide reads a recall needs (who holds its units)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from medtrace.models import Participant, Unit, UnitState
from medtrace.models.recalls import Recall

#: Built once (every verify runs it): building a statement costs more than running it.
_LOT_RECALL = select(Recall).where(
    col(Recall.gtin) == bindparam("gtin"), col(Recall.lot) == bindparam("lot")
)


def get_recall(*, session: Session, gtin: str, lot: str) -> Recall | None:
    """The recall of a lot, if it is recalled."""
    return session.exec(_LOT_RECALL, params={"gtin": gtin, "lot": lot}).first()


def get_recall_by_event_id(*, session: Session, event_id: str) -> Recall | None:
    """A recall by the id of its signed event (a retry names the same one)."""
    return session.exec(select(Recall).where(col(Recall.event_id) == event_id)).first()


def find_recalls(
    *,
    session: Session,
    ge_time: dt.datetime | None,
    lt_time: dt.datetime | None,
    read_points: frozenset[str] | None,
    after: int,
    limit: int,
) -> Sequence[Recall]:
    """Recalls in ledger order from leaf index ``after`` (exclusive), for the EPCIS query."""
    statement = select(Recall).where(col(Recall.leaf_index) > after)
    if ge_time is not None:
        statement = statement.where(col(Recall.event_time) >= ge_time)
    if lt_time is not None:
        statement = statement.where(col(Recall.event_time) < lt_time)
    if read_points is not None:
        statement = statement.where(col(Recall.gln).in_(read_points))
    return session.exec(statement.order_by(col(Recall.leaf_index)).limit(limit)).all()


def get_recall_by_epcis_id(*, session: Session, epcis_id: str) -> Recall | None:
    """A recall by the CBV 2.0 hash of its EPCIS event."""
    return session.exec(select(Recall).where(col(Recall.epcis_id) == epcis_id)).first()


def add_recall(*, session: Session, recall: Recall) -> Recall:
    """Add a recall (flushed, so its id is set)."""
    session.add(recall)
    session.flush()
    return recall


def lot_positions(
    *, session: Session, gtin: str, lot: str, states: Iterable[UnitState]
) -> Sequence[tuple[str, UnitState, str | None, int]]:
    """How many units of a lot in ``states`` each participant holds, by state and
    destination: ``(holder GLN, state, destination GLN, units)``; one grouped query on the
    lot's index."""
    rows = session.execute(
        sa_select(col(Unit.holder_gln), col(Unit.state), col(Unit.destination_gln), func.count())
        .where(col(Unit.gtin) == gtin, col(Unit.lot) == lot, col(Unit.state).in_(list(states)))
        .group_by(col(Unit.holder_gln), col(Unit.state), col(Unit.destination_gln))
    ).all()
    return [(holder, UnitState(state), dest, n) for holder, state, dest, n in rows]


def lot_exists(*, session: Session, gtin: str, lot: str) -> bool:
    """Whether any unit of the lot was commissioned."""
    found = session.exec(
        select(Unit.serial).where(col(Unit.gtin) == gtin, col(Unit.lot) == lot).limit(1)
    ).first()
    return found is not None


def participants_by_gln(*, session: Session, glns: Iterable[str]) -> dict[str, Participant]:
    """Participants by GLN, for the GLNs that are registered."""
    wanted = sorted(set(glns))
    if not wanted:
        return {}
    rows = session.exec(select(Participant).where(col(Participant.gln).in_(wanted))).all()
    return {p.gln: p for p in rows}
