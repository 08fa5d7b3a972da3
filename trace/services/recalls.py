"""Recalls: a manufacturer or a regulator withdraws a lot, and everyone who must act hears.

A recall is a signed ``recall`` event (a station of the manufacturer whose GS1 company prefix
the GTIN carries, or of a regulator) naming a lot and a reason, or one issued in the portal,
authenticated by the participant's session instead of a station key
(``recall_lot_on_session``). Every check runs before
anything is written; then the ledger leaf and the recall row commit in one transaction. From
that moment every unit of the lot is recalled: capture refuses to ship or dispense it
(``custody.recalled``) and the verify verdict says ``recalled``. Then each current holder gets
a ``recall`` alert. A retry of the same signed event writes nothing, and raises any alert a
crash may have lost.

The reach report lists every unit of the lot: its state, who holds it, dispensed or not. Only
the regulator and the lot's manufacturer may read it (it names every holder's stock). Its
counts come first, from one grouped query, and its units a page at a time in serial order
(keyset paging: the page after a serial), so a lot of 100 000 units is neither one answer of
many megabytes nor slower on its last page than on its first.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace import ledger
from medtrace.contracts.findings import Finding
from medtrace.contracts.recall import Holding, RecallNotice, recall_findings
from medtrace.custody import FINAL_STATES
from medtrace.epcis.document import recall_to_epcis
from medtrace.errors import Conflict, Forbidden, InvalidInput, NotFound
from medtrace.models import Participant, Role, UnitState, utcnow
from medtrace.models.recalls import Recall
from medtrace.protocol.envelope import canonical_json, event_id, leaf_bytes
from medtrace.protocol.identifiers import in_company_prefix
from medtrace.schemas.capture import EnvelopeIn
from medtrace.schemas.participants import ParticipantPublic
from medtrace.schemas.recalls import (
    ReachCounts,
    ReachUnitPublic,
    RecallEvent,
    RecallPublic,
    RecallReachPublic,
)
from medtrace.services.alerts import record_findings
from medtrace.services.capture import MAX_CLOCK_SKEW
from medtrace.services.signed import check_signed, parse_event
from medtrace.store import participants as participant_store
from medtrace.store import recalls as recall_store
from medtrace.store import units as unit_store

#: Units in one page of a reach report unless the caller asks for fewer; the most it may.
REACH_PAGE_SIZE = 1000
REACH_CSV_COLUMNS = (
    "serial",
    "state",
    "holder_gln",
    "holder_name",
    "destination_gln",
    "dispensed",
    "quarantined",
)

#: Units still in the chain: someone holds them (or is shipping them) and must act.
_IN_CHAIN = tuple(s for s in UnitState if s not in FINAL_STATES)


def may_recall(participant: Participant, gtin: str) -> bool:
    """A regulator recalls any lot; a manufacturer the lots of its own products (the GTIN is
    within its GS1 company prefix)."""
    if participant.role is Role.REGULATOR:
        return True
    return bool(
        participant.role is Role.MANUFACTURER
        and participant.company_prefix
        and in_company_prefix(gtin, participant.company_prefix)
    )


def recall_lot(*, session: Session, participant: Participant, envelope: EnvelopeIn) -> RecallPublic:
    """Record a signed recall and alert the lot's holders; all checks before any write."""
    event = _check_recall(session, participant, envelope)
    leaf = _RecallLeaf(
        event_id(envelope.event), leaf_bytes(envelope.model_dump()), envelope.event["event_time"]
    )
    return _record(session, participant, event, leaf)


def recall_lot_on_session(
    *, session: Session, participant: Participant, gtin: str, lot: str, reason: str
) -> RecallPublic:
    """Record a recall issued in the portal, where the regulator has no station key.

    It is recorded the way EPCIS and FHIR token events are
    (``medtrace.services.capture.token_authenticated``): the leaf is the canonical JSON of
    ``{"portal": <the form as sent>, "event": <the recall event>, "participant": <GLN>}``
    with no signature or station, and the event id is the SHA-256 of that leaf. The same
    checks as a signed recall apply (``recall.not_authorised``, ``recall.unknown_lot``,
    ``recall.already_recalled``, ...).
    """
    sent = {"gtin": gtin, "lot": lot, "reason": reason}
    now = utcnow()
    event_time = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raw = {"type": "recall", **sent, "gln": participant.gln, "event_time": event_time}
    event = parse_event(raw, model=RecallEvent, rule_prefix="recall")
    if not may_recall(participant, event.gtin):
        raise _not_authorised(participant, event.gtin)
    leaf = canonical_json({"portal": sent, "event": raw, "participant": participant.gln})
    return _record(
        session, participant, event, _RecallLeaf(hashlib.sha256(leaf).hexdigest(), leaf, event_time)
    )


@dataclass(frozen=True)
class _RecallLeaf:
    """A checked recall's ledger leaf, its event id and its event time as written."""

    event_id: str
    data: bytes
    event_time: str


def _record(
    session: Session, participant: Participant, event: RecallEvent, leaf: _RecallLeaf
) -> RecallPublic:
    eid = leaf.event_id
    row = recall_store.get_recall_by_event_id(session=session, event_id=eid)
    if row is None:
        if recall_store.get_recall(session=session, gtin=event.gtin, lot=event.lot) is not None:
            raise Conflict(f"lot {event.lot} is already recalled", rule="recall.already_recalled")
        if not recall_store.lot_exists(session=session, gtin=event.gtin, lot=event.lot):
            raise NotFound(
                f"no unit of lot {event.lot} of GTIN {event.gtin} was ever commissioned",
                rule="recall.unknown_lot",
            )
        session.rollback()  # reads end here; the write below is one transaction of its own
        row = _write(session, participant, event, leaf)
    raised = record_findings(session=session, findings=_findings(session, row, participant))
    return _public(row, participant, alerts_raised=len(raised))


def _check_recall(session: Session, participant: Participant, envelope: EnvelopeIn) -> RecallEvent:
    event = check_signed(
        session=session,
        participant=participant,
        envelope=envelope,
        model=RecallEvent,
        rule_prefix="recall",
    )
    if event.event_time > utcnow() + MAX_CLOCK_SKEW:
        raise InvalidInput(
            f"event_time {event.event_time.isoformat()} is in the future", rule="event.future_time"
        )
    if not may_recall(participant, event.gtin):
        raise _not_authorised(participant, event.gtin)
    return event


def _not_authorised(participant: Participant, gtin: str) -> Forbidden:
    return Forbidden(
        f"only the manufacturer of GTIN {gtin} or a regulator recalls its lots; "
        f"{participant.gln} is a {participant.role}",
        rule="recall.not_authorised",
    )


def _write(
    session: Session, participant: Participant, event: RecallEvent, leaf: _RecallLeaf
) -> Recall:
    assert participant.id is not None
    epcis = recall_to_epcis(
        gtin=event.gtin, lot=event.lot, gln=event.gln, event_time=leaf.event_time
    )
    try:
        with session.begin():
            conn = session.connection()
            ledger.begin_append(conn)
            leaf_index = ledger.append_leaves(conn, [leaf.data])
            row = recall_store.add_recall(
                session=session,
                recall=Recall(
                    gtin=event.gtin,
                    lot=event.lot,
                    reason=event.reason,
                    participant_id=participant.id,
                    gln=event.gln,
                    station_id=event.station_id,
                    event_id=leaf.event_id,
                    leaf_index=leaf_index,
                    epcis_id=epcis["eventID"],
                    event_time=event.event_time,
                ),
            )
    except IntegrityError as exc:
        raise Conflict(
            f"lot {event.lot} was recalled by another request at the same moment",
            rule="recall.already_recalled",
        ) from exc
    return row


def _findings(session: Session, row: Recall, by: Participant) -> list[Finding]:
    notice = RecallNotice(
        event_id=row.event_id,
        leaf_index=row.leaf_index,
        gtin=row.gtin,
        lot=row.lot,
        reason=row.reason,
        recalled_by=f"{by.name} ({by.gln})",
        recalled_at=row.event_time,
    )
    positions = recall_store.lot_positions(
        session=session, gtin=notice.gtin, lot=notice.lot, states=_IN_CHAIN
    )
    held: Counter[str] = Counter()
    inbound: Counter[str] = Counter()
    for holder, state, destination, units in positions:
        held[holder] += units
        if state in (UnitState.IN_TRANSIT, UnitState.RETURNED) and destination is not None:
            inbound[destination] += units
    names = recall_store.participants_by_gln(session=session, glns=[*held, *inbound])
    holdings = [
        *(Holding(g, _name(names, g), n) for g, n in sorted(held.items())),
        *(Holding(g, _name(names, g), n, inbound=True) for g, n in sorted(inbound.items())),
    ]
    session.rollback()  # the reads end here; recording opens its own transaction
    return recall_findings(notice, holdings)


def _name(names: dict[str, Participant], gln: str) -> str:
    participant = names.get(gln)
    return participant.name if participant else gln


def _participant_public(participant: Participant) -> ParticipantPublic:
    return ParticipantPublic(
        gln=participant.gln, name=participant.name, role=participant.role, city=participant.city
    )


def _public(row: Recall, by: Participant, *, alerts_raised: int) -> RecallPublic:
    return RecallPublic(
        gtin=row.gtin,
        lot=row.lot,
        reason=row.reason,
        recalled_by=_participant_public(by),
        event_time=row.event_time,
        event_id=row.event_id,
        epcis_id=row.epcis_id,
        leaf_index=row.leaf_index,
        alerts_raised=alerts_raised,
    )


def recall_reach(
    *,
    session: Session,
    participant: Participant,
    gtin: str,
    lot: str,
    after: str = "",
    limit: int = REACH_PAGE_SIZE,
) -> RecallReachPublic:
    """The recall of a lot, its counts, and its units whose serial sorts after ``after`` (at
    most ``limit``, in serial order), for the regulator or the lot's manufacturer."""
    row = _visible_recall(session, participant, gtin, lot)
    by = participant_store.get_participant(session=session, participant_id=row.participant_id)
    assert by is not None
    summary = unit_store.lot_summary(session=session, gtin=gtin, lot=lot)
    units = unit_store.get_lot_units_page(
        session=session, gtin=gtin, lot=lot, after_serial=after, limit=limit + 1
    )
    more = len(units) > limit
    units = units[:limit]
    holders = recall_store.participants_by_gln(
        session=session, glns=[u.holder_gln for u in units] + [gln for _, gln, _, _ in summary]
    )
    listed = [
        ReachUnitPublic(
            serial=u.serial,
            state=u.state,
            holder=_participant_public(holders[u.holder_gln]) if u.holder_gln in holders else None,
            destination_gln=u.destination_gln,
            dispensed=u.state is UnitState.DISPENSED,
            quarantined=u.quarantined,
        )
        for u in units
    ]
    return RecallReachPublic(
        recall=_public(row, by, alerts_raised=0),
        counts=_counts(summary, registered=holders.keys()),
        units=listed,
        next_after=listed[-1].serial if more else None,
    )


def reach_csv(*, session: Session, participant: Participant, gtin: str, lot: str) -> Iterator[str]:
    """Every unit of a recalled lot as CSV (RFC 4180), in serial order, for a download that
    may be as long as the lot.

    Who may see it is checked now, so that a refusal is an error page and not a broken
    download; the rows then come a page at a time, each page read in its own short
    transaction, so no transaction stays open while a slow client reads."""
    _visible_recall(session, participant, gtin, lot)
    session.rollback()
    return _reach_rows(session, gtin, lot)


def _reach_rows(session: Session, gtin: str, lot: str) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REACH_CSV_COLUMNS)
    after: str | None = ""
    while after is not None:
        units = unit_store.get_lot_units_page(
            session=session, gtin=gtin, lot=lot, after_serial=after, limit=REACH_PAGE_SIZE
        )
        holders = recall_store.participants_by_gln(
            session=session, glns=[u.holder_gln for u in units]
        )
        session.rollback()
        for u in units:
            holder = holders.get(u.holder_gln)
            writer.writerow(
                [
                    u.serial,
                    u.state.value,
                    u.holder_gln,
                    holder.name if holder else "",
                    u.destination_gln or "",
                    u.state is UnitState.DISPENSED,
                    u.quarantined,
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        after = units[-1].serial if len(units) == REACH_PAGE_SIZE else None


def _visible_recall(session: Session, participant: Participant, gtin: str, lot: str) -> Recall:
    """The recall of a lot, if ``participant`` may see its reach (the regulator, the lot's
    manufacturer)."""
    if not may_recall(participant, gtin):
        raise Forbidden(
            "a recall's reach is shown to the regulator and the lot's manufacturer only",
            rule="recall.not_visible",
        )
    row = recall_store.get_recall(session=session, gtin=gtin, lot=lot)
    if row is None:
        raise NotFound(f"lot {lot} of GTIN {gtin} is not recalled", rule="recall.unknown")
    return row


def _counts(
    summary: Sequence[tuple[UnitState, str, bool, int]], *, registered: Collection[str]
) -> ReachCounts:
    """The reach at a glance, from the lot's units counted by state and holder."""
    by_state: Counter[UnitState] = Counter()
    for state, _, _, count in summary:
        by_state[state] += count
    total = sum(by_state.values())
    moving = by_state[UnitState.IN_TRANSIT] + by_state[UnitState.RETURNED]
    gone = sum(by_state[s] for s in FINAL_STATES if s is not UnitState.DISPENSED)
    holding = {gln for state, gln, _, _ in summary if gln in registered and state in _IN_CHAIN}
    return ReachCounts(
        units=total,
        dispensed=by_state[UnitState.DISPENSED],
        in_transit=moving,
        held=total - by_state[UnitState.DISPENSED] - moving - gone,
        out_of_chain=gone,
        holders=len(holding),
        by_state=dict(by_state),
    )
