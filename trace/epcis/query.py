"""The EPCIS 2.0 query interface over medtrace's events (EPCIS 2.0 §8.2.7 SimpleEventQuery,
REST binding ``GET /events``).

Supported parameters: ``eventType``, ``GE_eventTime``, ``LT_eventTime``, ``EQ_bizStep``,
``EQ_disposition``, ``MATCH_epc``, ``MATCH_anyEPC``, ``EQ_bizLocation``, ``EQ_readPoint``,
``EQ_destination_owning_party`` (where a shipment goes), ``perPage`` and ``nextPageToken``.
Each is translated to columns of the events table and the matching rows are read in ledger
order. An event captured by EPCIS is answered as it was
captured (``epcis_events``: its eventID, all its EPCs, every member it carried), once, however
many of its rows (one per EPC, written together, so next to each other in the ledger) match;
a page holds ``perPage`` such events, and its token is the last leaf of its last one. Any
participant but its sender, the participant it was recorded for (at its GLN: the principal
of a capture grant), the parties it names as source or destination and regulators
reads only its custody record (``members.public_view``): sensor data, business transactions
and extensions are commercial details. Other events (a station's, or captured before events
were kept) are written in EPCIS from their ledger leaf, so the answer and the leaf can never
disagree. Recalls (ObjectEvents about a whole lot, disposition ``recalled``) are read from
their own table and merged in ledger order; they name no instance EPC, no bizLocation and no
destination, so ``MATCH_*``, ``EQ_bizLocation`` and ``EQ_destination_*`` leave them out.

One visibility rule, in two steps, for ``GET /events``, one event by id, named queries and
their subscriptions (``medtrace.services.subscriptions``, which read through
:func:`query_events` as the subscription's owner): :func:`viewer_of` decides *which* events a
participant reads at all (those it is party to; the regulator all; recalls all), and
:func:`_entitled` *how much* of an EPCIS-captured one it reads (whole, or its custody record).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    destinations: Sequence[str] | None = None
    per_page: int = 30
    next_page_token: str | None = None


@dataclass(frozen=True)
class EventPage:
    """One page of EPCIS events, the token of the next page (None on the last), each
    event's ledger leaf index (the last of its rows), by which a reader that follows the
    ledger (a subscription) knows each event and where to carry on, and each event's own
    ``@context`` entries (its sender's, which its extension members need; none for an event
    shown as its custody record)."""

    events: list[dict[str, Any]]
    next_page_token: str | None
    leaf_indexes: list[int]
    event_contexts: list[list[Any]]

    @property
    def contexts(self) -> list[Any]:
        """The ``@context`` entries the page's events need, each once."""
        found: list[Any] = []
        for entries in self.event_contexts:
            found.extend(c for c in entries if c not in found)
        return found


def viewer_of(participant: Participant) -> event_store.Viewer | None:
    """Which events ``participant`` reads at all: the regulator every event, anyone else the
    events it is party to (see ``medtrace.store.events.find_events``). Recalls concern
    everyone who may hold the lot, so they are read by all. How much of each it reads is
    :func:`_entitled`'s: the first step of the one visibility rule of the query API and of
    the subscriptions that push its answers."""
    if participant.role is Role.REGULATOR:
        return None
    assert participant.id is not None
    return event_store.Viewer(participant.id, participant.gln, participant.company_prefix)


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone", rule="epcis.naive_time")
    return value


def _filter(query: EventQuery, viewer: event_store.Viewer | None) -> event_store.EventFilter:
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
        destinations=_places(query.destinations),
        viewer=viewer,
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
        and query.destinations is None
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
    """Whether ``viewer``, who reads the event at all (:func:`viewer_of`), reads it whole:
    its sender, the participant at whose GLN (``gln``) it was recorded (the principal, when a
    grantee captured it), a party it names, a regulator. Anyone else (a later holder of a
    unit it names, the brand owner of its GTIN) reads its custody record."""
    return (
        viewer.id == row.participant_id
        or viewer.gln == gln
        or viewer.role is Role.REGULATOR
        or viewer.gln in parties(event)
    )


def _as_epcis(session: Session, groups: Sequence[Group], viewer: Participant) -> EventPage:
    """The EPCIS event of each group (as captured where it was; an event not kept, one per
    row), with the sender's context entries each needs (none for one shown as its custody
    record) and its last leaf index; no next page yet."""
    captured = epcis_store.get_captured(
        session=session,
        event_ids={g[0].epcis_id for g in groups if isinstance(g[0], Event)},
    )
    from_leaves = [row for g in groups if g[0].epcis_id not in captured for row in g]
    written = iter(_from_leaves(session, from_leaves))
    page = EventPage([], None, [], [])
    for group in groups:
        row = captured.get(group[0].epcis_id)
        if row is None:
            for one in group:
                page.events.append(next(written))
                page.leaf_indexes.append(one.leaf_index)
                page.event_contexts.append([])
            continue
        document = json.loads(row.document)
        senders = [c for c in document.pop("@context") if c != CONTEXT]
        whole = _entitled(viewer, row, document, group[0].gln)
        page.events.append(document if whole else public_view(document))
        page.leaf_indexes.append(group[-1].leaf_index)
        page.event_contexts.append(senders if whole else [])
    return page


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


def query_events(*, session: Session, query: EventQuery, participant: Participant) -> EventPage:
    """One page of the events matching ``query`` that ``participant`` reads, in ledger order,
    as it may read them (whole or as custody records)."""
    if not 1 <= query.per_page <= MAX_PER_PAGE:
        raise InvalidInput(f"perPage is 1 to {MAX_PER_PAGE}", rule="epcis.per_page")
    where = _filter(query, viewer_of(participant))
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
    answer = _as_epcis(session, page, participant)
    token = str(page[-1][-1].leaf_index) if more else None
    return replace(answer, next_page_token=token)


def lot_events(*, session: Session, gtin: str, lot: str) -> list[dict[str, Any]]:
    """Every event of a lot's units and the lot's recall, as EPCIS events in ledger order."""
    rows: list[Event | Recall] = [*event_store.get_lot_events(session=session, gtin=gtin, lot=lot)]
    recall = recall_store.get_recall(session=session, gtin=gtin, lot=lot)
    if recall is not None:
        rows.append(recall)
    return _from_leaves(session, sorted(rows, key=lambda row: row.leaf_index))


def get_event(
    *, session: Session, epcis_id: str, participant: Participant
) -> tuple[dict[str, Any], list[Any]]:
    """The EPCIS event with this id, as ``participant`` may read it, with the sender's
    context entries it needs; or ``NotFound`` (also for an event the participant may not
    read at all: its existence is not revealed)."""
    row: Event | Recall | None = event_store.get_by_epcis_id(
        session=session, epcis_id=epcis_id
    ) or recall_store.get_recall_by_epcis_id(session=session, epcis_id=epcis_id)
    viewer = viewer_of(participant)
    hidden = (
        isinstance(row, Event)
        and viewer is not None
        and not event_store.seen_by(session=session, epcis_id=epcis_id, viewer=viewer)
    )
    if row is None or hidden:
        raise NotFound(f"no event has the id {epcis_id!r}", rule="epcis.unknown_event")
    answer = _as_epcis(session, [[row]], participant)
    return answer.events[0], answer.event_contexts[0]
