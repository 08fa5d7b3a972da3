"""The EPCIS 2.0 query interface over medtrace's events (EPCIS 2.0 §8.2.7 SimpleEventQuery,
REST binding ``GET /events``).

Supported parameters: ``eventType``, ``GE_eventTime``, ``LT_eventTime``, ``EQ_bizStep``,
``EQ_disposition``, ``MATCH_epc``, ``MATCH_anyEPC``, ``EQ_bizLocation``, ``EQ_readPoint``,
``perPage`` and ``nextPageToken``. Each is translated to columns of the events table and
the matching rows are read in ledger order. An event captured by EPCIS is answered as it was
captured (``epcis_events``: its eventID, all its EPCs, every member it carried), once, however
many of its rows (one per EPC, written together, so next to each other in the ledger) match;
a page holds ``perPage`` such events, and its token is the last leaf of its last one. Any
participant but its sender, the participant it was recorded for (at its GLN: the principal
of a capture grant), the parties it names as source or destination and regulators
reads only its custody record (``members.public_view``): sensor data, business transactions
and extensions are commercial details. Other events (a station's, or captured before events
were kept) are written in EPCIS from their ledger leaf, so the answer and the leaf can never
disagree. Recalls (ObjectEvents about a whole lot, disposition ``recalled``) are read from
their own table and merged in ledger order; they name no instance EPC and no bizLocation, so
``MATCH_*`` and ``EQ_bizLocation`` leave them out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from medtrace import ledger
from medtrace.bounds import MAX_BIGINT
from medtrace.epcis.document import CONTEXT, recall_to_epcis, to_epcis
from medtrace.epcis.epc import parse_epc, parse_location
from medtrace.epcis.members import parties, public_view
from medtrace.epcis.vocabulary import RECALL_SHAPE, SHAPES, bare, types_with
from medtrace.errors import InvalidInput, NotFound
from medtrace.models import Event, Participant, Role
from medtrace.models.epcis import CapturedEvent
from medtrace.models.recalls import Recall
from medtrace.schemas.capture import SignedEvent
from medtrace.store import epcis_events as epcis_store
from medtrace.store import events as event_store
from medtrace.store import recalls as recall_store

MAX_PER_PAGE = 1000
#: Rows read per query while gathering a page's events (each may span many rows).
_ROWS_PER_READ = 500
#: One answered event: the rows it stands for, in ledger order.
Group = list[Event | Recall]


@dataclass(frozen=True)
class EventQuery:
    """The query parameters, as sent (lists are the ``|``-separated values)."""

    event_types: Sequence[str] | None = None
    ge_event_time: dt.datetime | None = None
    lt_event_time: dt.datetime | None = None
    biz_steps: Sequence[str] | None = None
    dispositions: Sequence[str] | None = None
    match_epc: Sequence[str] | None = None
    match_any_epc: Sequence[str] | None = None
    biz_locations: Sequence[str] | None = None
    read_points: Sequence[str] | None = None
    per_page: int = 30
    next_page_token: str | None = None


@dataclass(frozen=True)
class EventPage:
    """One page of EPCIS events, the token of the next page (None on the last) and the
    senders' own ``@context`` entries their extension members need."""

    events: list[dict[str, Any]]
    next_page_token: str | None
    contexts: list[Any]


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone", rule="epcis.naive_time")
    return value


def _filter(query: EventQuery) -> event_store.EventFilter:
    types = None
    if query.event_types is not None:
        types = {k for k, shape in SHAPES.items() if shape.event_type in query.event_types}
    if query.biz_steps is not None:
        steps = {bare(v, kind="bizStep") for v in query.biz_steps}
        types = types_with(biz_steps=steps) & (types if types is not None else set(SHAPES))
    if query.dispositions is not None:
        found = types_with(dispositions={bare(v, kind="disposition") for v in query.dispositions})
        types = found & (types if types is not None else set(SHAPES))
    epcs = [parse_epc(v) for v in (*(query.match_epc or ()), *(query.match_any_epc or ()))]
    return event_store.EventFilter(
        types=None if types is None else frozenset(types),
        ge_time=_aware(query.ge_event_time, "GE_eventTime"),
        lt_time=_aware(query.lt_event_time, "LT_eventTime"),
        units=tuple((e.gtin, e.serial) for e in epcs if e.gtin and e.serial),
        containers=tuple(e.sscc for e in epcs if e.sscc),
        containers_as_parent=query.match_any_epc is not None,
        biz_locations=_places(query.biz_locations),
        read_points=_places(query.read_points),
    )


def _matches_recalls(query: EventQuery) -> bool:
    """Whether a recall's EPCIS shape can match the query's parameters."""
    shape = RECALL_SHAPE
    steps = None if query.biz_steps is None else {bare(v, kind="bizStep") for v in query.biz_steps}
    dispositions = (
        None
        if query.dispositions is None
        else {bare(v, kind="disposition") for v in query.dispositions}
    )
    return (
        (query.event_types is None or shape.event_type in query.event_types)
        and (steps is None or shape.biz_step in steps)
        and (dispositions is None or shape.disposition in dispositions)
        and query.match_epc is None
        and query.match_any_epc is None
        and query.biz_locations is None
    )


def _places(values: Sequence[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(parse_location(v) for v in values)


def _token(text: str | None) -> int:
    """The leaf index a page token names; a token this server cannot have given (not
    decimal, or beyond a BIGINT: checked on the text first, so a huge one costs nothing) is
    refused."""
    if text is None:
        return -1
    digits = len(str(MAX_BIGINT))
    if not (text.isascii() and text.isdigit() and len(text) <= digits) or int(text) > MAX_BIGINT:
        raise InvalidInput("nextPageToken is not one this server gave", rule="epcis.bad_token")
    return int(text)


def _from_leaves(session: Session, rows: Sequence[Event | Recall]) -> list[dict[str, Any]]:
    """Each row's event in EPCIS, written from its ledger leaf."""
    leaves = ledger.leaves_at(session.connection(), [row.leaf_index for row in rows])
    events = []
    for row in rows:
        signed = json.loads(leaves[row.leaf_index])["event"]
        if isinstance(row, Recall):
            events.append(
                recall_to_epcis(
                    gtin=row.gtin, lot=row.lot, gln=row.gln, event_time=signed["event_time"]
                )
            )
        else:
            events.append(to_epcis(SignedEvent.model_validate(signed), signed["event_time"]))
    return events


def _entitled(viewer: Participant, row: CapturedEvent, event: dict[str, Any], gln: str) -> bool:
    """Whether ``viewer`` reads the whole event: its sender, the participant at whose GLN
    (``gln``) it was recorded (the principal, when a grantee captured it), a party it names,
    a regulator."""
    return (
        viewer.id == row.participant_id
        or viewer.gln == gln
        or viewer.role is Role.REGULATOR
        or viewer.gln in parties(event)
    )


def _as_epcis(
    session: Session, groups: Sequence[Group], viewer: Participant
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The EPCIS event of each group (as captured where it was), and the senders' context
    entries the events shown whole need."""
    captured = epcis_store.get_captured(
        session=session,
        event_ids={g[0].epcis_id for g in groups if isinstance(g[0], Event)},
    )
    from_leaves = [row for g in groups if g[0].epcis_id not in captured for row in g]
    written = iter(_from_leaves(session, from_leaves))
    events: list[dict[str, Any]] = []
    contexts: list[Any] = []
    for group in groups:
        row = captured.get(group[0].epcis_id)
        if row is None:
            events.extend(next(written) for _ in group)
            continue
        document = json.loads(row.document)
        senders = [c for c in document.pop("@context") if c != CONTEXT]
        if _entitled(viewer, row, document, group[0].gln):
            events.append(document)
            contexts.extend(c for c in senders if c not in contexts)
        else:
            events.append(public_view(document))
    return events, contexts


def _event_groups(
    session: Session, where: event_store.EventFilter, after: int, wanted: int
) -> list[Group]:
    """The first ``wanted`` events matching ``where`` after leaf ``after``, each as its rows:
    a run of rows with one EPCIS id is one event. Only the last group may be cut short (it
    only tells that there is a next page)."""
    groups: list[Group] = []
    while True:
        rows = event_store.find_events(
            session=session, where=where, after=after, limit=max(wanted, _ROWS_PER_READ)
        )
        for row in rows:
            if groups and groups[-1][-1].epcis_id == row.epcis_id:
                groups[-1].append(row)
            elif len(groups) == wanted:
                return groups
            else:
                groups.append([row])
        if len(rows) < max(wanted, _ROWS_PER_READ):
            return groups
        after = rows[-1].leaf_index


def query_events(*, session: Session, viewer: Participant, query: EventQuery) -> EventPage:
    """One page of the events matching ``query``, in ledger order, as ``viewer`` may read
    them."""
    if not 1 <= query.per_page <= MAX_PER_PAGE:
        raise InvalidInput(f"perPage is 1 to {MAX_PER_PAGE}", rule="epcis.per_page")
    where = _filter(query)
    after, wanted = _token(query.next_page_token), query.per_page + 1
    groups: list[Group] = []
    if where.types is None or where.types:
        groups.extend(_event_groups(session, where, after, wanted))
    if _matches_recalls(query):
        recalls = recall_store.find_recalls(
            session=session,
            ge_time=where.ge_time,
            lt_time=where.lt_time,
            read_points=where.read_points,
            after=after,
            limit=wanted,
        )
        groups.extend([recall] for recall in recalls)
    groups = sorted(groups, key=lambda group: group[0].leaf_index)[:wanted]
    page = groups[: query.per_page]
    more = len(groups) > query.per_page
    events, contexts = _as_epcis(session, page, viewer)
    return EventPage(events, str(page[-1][-1].leaf_index) if more else None, contexts)


def lot_events(*, session: Session, gtin: str, lot: str) -> list[dict[str, Any]]:
    """Every event of a lot's units and the lot's recall, as EPCIS events in ledger order."""
    rows: list[Event | Recall] = [*event_store.get_lot_events(session=session, gtin=gtin, lot=lot)]
    recall = recall_store.get_recall(session=session, gtin=gtin, lot=lot)
    if recall is not None:
        rows.append(recall)
    return _from_leaves(session, sorted(rows, key=lambda row: row.leaf_index))


def get_event(
    *, session: Session, viewer: Participant, epcis_id: str
) -> tuple[dict[str, Any], list[Any]]:
    """The EPCIS event with this id, as ``viewer`` may read it, with the sender's context
    entries it needs; or ``NotFound``."""
    row: Event | Recall | None = event_store.get_by_epcis_id(
        session=session, epcis_id=epcis_id
    ) or recall_store.get_recall_by_epcis_id(session=session, epcis_id=epcis_id)
    if row is None:
        raise NotFound(f"no event has the id {epcis_id!r}", rule="epcis.unknown_event")
    events, contexts = _as_epcis(session, [[row]], viewer)
    return events[0], contexts
