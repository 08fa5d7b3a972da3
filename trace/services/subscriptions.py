"""EPCIS 2.0 named queries and their subscriptions (REST binding ``/queries``): partners are
told, not asked.

A receiving partner names a query (``POST /queries``), then subscribes a webhook to it with
``stream: true``; from then on every event the query matches is pushed to the webhook as it
is captured, which is the DSCSA transaction-information exchange without polling.

The dispatcher (:func:`dispatch`, a scheduler job) works in two steps, both durable:

1. *Enqueue.* For each subscription, the events after its cursor are read **through the
   query service as the subscription's owner** (``medtrace.epcis.query.query_events``), so a
   subscription is pushed exactly what its owner could read with ``GET /events``, as it
   would read it (whole, or only the custody record), never another company's events;
   each becomes an outbox row, and the cursor moves, in one transaction.
2. *Deliver.* Each subscription's oldest pending row is POSTed first, as an
   EPCISQueryDocument naming the ``subscriptionID``; its successors wait until it is
   acknowledged, so a receiver sees its events in ledger order. Sending, signing, the
   address rules, deadlines and retries are the alert webhooks' own
   (:mod:`medtrace.services.webhooks`): ``Medtrace-Signature``, repeated as the binding's
   ``GS1-Signature``, is the HMAC of the body with the subscription's ``signatureToken``.

An event whose acknowledgement was lost (a restart between the POST and its settlement) is
sent again with the same ``eventID``: at least once, and a receiver deduplicates on it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func
from sqlmodel import Session, col, delete, select

from medtrace import ledger
from medtrace.db import lost_race_raises
from medtrace.epcis.document import query_document
from medtrace.epcis.query import EventPage, EventQuery, query_events
from medtrace.errors import Conflict, InvalidInput, NotFound
from medtrace.models import Event, Participant, utcnow
from medtrace.models.alerts import DeliveryState
from medtrace.models.subscriptions import NamedQuery, QueryDelivery, QuerySubscription
from medtrace.outbound import IPNetwork, check_url
from medtrace.protocol.headers import EPCIS_SIGNATURE_HEADER, SIGNATURE_HEADER
from medtrace.schemas.subscriptions import (
    NamedQueryCreate,
    NamedQueryPublic,
    QueryParameters,
    SubscriptionCreate,
    SubscriptionPublic,
)
from medtrace.services.webhooks import DeliveryPolicy, DeliveryReport, Job, send_jobs

#: Subscriptions one participant may hold: each costs a query per dispatcher pass.
MAX_SUBSCRIPTIONS = 20
JSON_LD = "application/ld+json"


# --- named queries ----------------------------------------------------------------------------


def create_query(
    *, session: Session, participant: Participant, query_in: NamedQueryCreate
) -> NamedQueryPublic:
    """Keep a query under a name of the caller's; a name it already uses is refused
    (``epcis.query_exists``). Each participant's names are its own."""
    assert participant.id is not None
    parameters = query_in.query.model_dump(mode="json", by_alias=True, exclude_none=True)
    exists = Conflict(
        f"you already have a query named {query_in.name!r}", rule="epcis.query_exists"
    )
    with session.begin(), lost_race_raises(exists):
        # Run once, so that a bad EPC or place is refused now (``epcis.*``), not at each pass.
        query = _event_query(query_in.query, per_page=1, after=None)
        query_events(session=session, query=query, participant=participant)
        if _find_query(session, participant, query_in.name) is not None:
            raise exists
        session.add(
            NamedQuery(participant_id=participant.id, name=query_in.name, parameters=parameters)
        )
    return NamedQueryPublic(name=query_in.name, query=parameters)


def list_queries(*, session: Session, participant: Participant) -> list[NamedQueryPublic]:
    """The caller's named queries, by name."""
    rows = session.exec(
        select(NamedQuery)
        .where(col(NamedQuery.participant_id) == participant.id)
        .order_by(col(NamedQuery.name))
    ).all()
    return [NamedQueryPublic(name=row.name, query=row.parameters) for row in rows]


def get_query(*, session: Session, participant: Participant, name: str) -> NamedQueryPublic:
    """One of the caller's named queries, or ``epcis.unknown_query``."""
    row = _own_query(session, participant, name)
    return NamedQueryPublic(name=row.name, query=row.parameters)


def delete_query(*, session: Session, participant: Participant, name: str) -> None:
    """Forget one of the caller's named queries with its subscriptions and their outbox."""
    with session.begin():
        row = _own_query(session, participant, name)
        ids = select(QuerySubscription.id).where(col(QuerySubscription.query_id) == row.id)
        session.exec(delete(QueryDelivery).where(col(QueryDelivery.subscription_id).in_(ids)))
        session.exec(delete(QuerySubscription).where(col(QuerySubscription.query_id) == row.id))
        session.delete(row)


def run_query(
    *,
    session: Session,
    participant: Participant,
    name: str,
    per_page: int,
    next_page_token: str | None,
) -> EventPage:
    """``GET /queries/{name}/events``: one page of the named query's events, as the caller
    may see them."""
    row = _own_query(session, participant, name)
    query = _event_query(_parameters(row), per_page=per_page, after=next_page_token)
    return query_events(session=session, query=query, participant=participant)


# --- subscriptions ----------------------------------------------------------------------------


def subscribe(
    *,
    session: Session,
    participant: Participant,
    name: str,
    subscription_in: SubscriptionCreate,
    allowed_networks: Sequence[IPNetwork],
) -> SubscriptionPublic:
    """Push the named query's events to ``dest`` from now on (or from
    ``initialRecordTime``). ``dest`` is held to the alert webhooks' address rules now
    (``webhook.*``) and before every delivery. The client's ``signatureToken`` keys the
    signatures and, as the binding asks, is never shown again."""
    _check_trigger(subscription_in)
    token = subscription_in.signature_token
    if token is None:
        raise InvalidInput(
            "a subscription needs a signatureToken: deliveries are always signed",
            rule="epcis.signature_token_required",
        )
    check_url(subscription_in.dest, allowed=allowed_networks)
    with session.begin():
        query = _own_query(session, participant, name)
        if _subscription_count(session, participant) >= MAX_SUBSCRIPTIONS:
            raise InvalidInput(
                f"a participant holds at most {MAX_SUBSCRIPTIONS} subscriptions",
                rule="epcis.too_many_subscriptions",
            )
        assert query.id is not None
        row = QuerySubscription(
            subscription_id=secrets.token_hex(16),
            query_id=query.id,
            dest=subscription_in.dest,
            signature_token=token,
            cursor=_start(session, subscription_in.initial_record_time),
        )
        session.add(row)
    return _public(row, name)


def list_subscriptions(
    *, session: Session, participant: Participant, name: str
) -> list[SubscriptionPublic]:
    """The subscriptions of one of the caller's named queries (without their tokens)."""
    query = _own_query(session, participant, name)
    rows = session.exec(
        select(QuerySubscription)
        .where(col(QuerySubscription.query_id) == query.id)
        .order_by(col(QuerySubscription.id))
    ).all()
    return [_public(row, name) for row in rows]


def unsubscribe(
    *, session: Session, participant: Participant, name: str, subscription_id: str
) -> None:
    """End a subscription of the caller's; its undelivered events are dropped. Another
    participant's subscription is not found, whoever knows its id."""
    with session.begin():
        query = _own_query(session, participant, name)
        row = session.exec(
            select(QuerySubscription).where(
                col(QuerySubscription.subscription_id) == subscription_id,
                col(QuerySubscription.query_id) == query.id,
            )
        ).first()
        if row is None:
            raise NotFound(
                f"query {name!r} has no subscription {subscription_id!r}",
                rule="epcis.unknown_subscription",
            )
        session.exec(delete(QueryDelivery).where(col(QueryDelivery.subscription_id) == row.id))
        session.delete(row)


# --- the dispatcher ---------------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What one dispatcher pass did: events put in the outbox, and the delivery outcomes."""

    enqueued: int
    deliveries: DeliveryReport


def dispatch(*, engine: Engine, policy: DeliveryPolicy, batch: int = 500) -> DispatchReport:
    """One pass: enqueue each subscription's new events (at most ``batch`` each), then
    deliver what is due. Safe to stop at any point and to run again."""
    enqueued = 0
    for subscription in _all_ids(engine):
        # One subscription's lost race (ended during the pass) is retried at the next pass;
        # it does not hold up the others.
        with contextlib.suppress(Conflict):
            enqueued += _enqueue(engine, subscription=subscription, batch=batch)
    jobs = _due_jobs(engine, limit=batch)
    return DispatchReport(
        enqueued, send_jobs(engine=engine, jobs=jobs, policy=policy, outbox=QueryDelivery)
    )


def _enqueue(engine: Engine, *, subscription: int, batch: int) -> int:
    """Put the events after one subscription's cursor that its owner may see in its outbox
    and move the cursor past them, in one transaction; how many were put."""
    ended = Conflict("the subscription changed during the pass", rule="store.conflict")
    with Session(engine) as session, lost_race_raises(ended), session.begin():
        row = session.get(QuerySubscription, subscription)
        if row is None:  # ended since the pass began
            return 0
        # Read first: every leaf below it is committed, so the query below sees it.
        committed = ledger.committed_size(session.connection())
        query = session.get(NamedQuery, row.query_id)
        owner = session.get(Participant, query.participant_id) if query else None
        assert query is not None and owner is not None
        page = query_events(
            session=session,
            query=_event_query(
                _parameters(query),
                per_page=batch,
                after=str(row.cursor) if row.cursor >= 0 else None,
            ),
            participant=owner,
        )
        for leaf_index, event, contexts in zip(
            page.leaf_indexes, page.events, page.event_contexts, strict=True
        ):
            # Kept as the owner reads it (whole, or its custody record), with the sender's
            # context entries a whole event's extension members need.
            kept = {"@context": contexts, **event} if contexts else event
            session.add(
                QueryDelivery(
                    subscription_id=subscription, leaf_index=leaf_index, event=json.dumps(kept)
                )
            )
        if page.next_page_token is not None:
            row.cursor = page.leaf_indexes[-1]
        else:  # all read: skip the events the query does not match, for good
            row.cursor = max([committed - 1, *page.leaf_indexes])
        return len(page.events)


def _due_jobs(engine: Engine, *, limit: int) -> list[Job]:
    """The pending outbox rows of every subscription whose oldest pending row is due, oldest
    first: a later event never overtakes one that waits for a retry."""
    pending = col(QueryDelivery.state) == DeliveryState.PENDING
    with Session(engine) as session:
        heads = (
            select(func.min(QueryDelivery.leaf_index).label("head"), QueryDelivery.subscription_id)
            .where(pending)
            .group_by(col(QueryDelivery.subscription_id))
            .subquery()
        )
        due = (
            select(QueryDelivery.subscription_id)
            .join(
                heads,
                (heads.c.subscription_id == QueryDelivery.subscription_id)
                & (heads.c.head == QueryDelivery.leaf_index),
            )
            .where(pending, col(QueryDelivery.next_attempt_at) <= utcnow())
        )
        rows = session.exec(
            select(QueryDelivery, QuerySubscription, NamedQuery)
            .join(
                QuerySubscription, col(QuerySubscription.id) == col(QueryDelivery.subscription_id)
            )
            .join(NamedQuery, col(NamedQuery.id) == col(QuerySubscription.query_id))
            .where(pending, col(QueryDelivery.subscription_id).in_(due))
            .order_by(col(QueryDelivery.subscription_id), col(QueryDelivery.leaf_index))
            .limit(limit)
        ).all()
        created = utcnow()
        return [
            Job(
                delivery_id=delivery.id,
                subscription_id=delivery.subscription_id,
                url=subscription.dest,
                secret=subscription.signature_token,
                body=_document(delivery, subscription, query.name, created),
                content_type=JSON_LD,
                signature_headers=(SIGNATURE_HEADER, EPCIS_SIGNATURE_HEADER),
            )
            for delivery, subscription, query in rows
            if delivery.id is not None
        ]


def _document(
    delivery: QueryDelivery, subscription: QuerySubscription, name: str, created: dt.datetime
) -> bytes:
    """The EPCISQueryDocument one delivery POSTs: the event, its query and subscription."""
    event = json.loads(delivery.event)
    document = query_document(
        [event],
        created=created,
        contexts=event.pop("@context", []),
        query_name=name,
        subscription_id=subscription.subscription_id,
    )
    return json.dumps(document, separators=(",", ":")).encode()


# --- helpers ----------------------------------------------------------------------------------


def _check_trigger(subscription_in: SubscriptionCreate) -> None:
    """Only streams: a scheduled report is refused rather than silently never sent."""
    if subscription_in.schedule is not None or subscription_in.report_if_empty:
        raise InvalidInput(
            "scheduled subscriptions (and reportIfEmpty, which needs a schedule) are not "
            'supported: subscribe with "stream": true',
            rule="epcis.schedule_unsupported",
        )
    if not subscription_in.stream:
        raise InvalidInput(
            'a subscription needs "stream": true (events pushed as they are captured)',
            rule="epcis.stream_required",
        )


def _start(session: Session, initial_record_time: dt.datetime | None) -> int:
    """The cursor a new subscription starts from: the ledger's last leaf (only events
    captured from now on), or the last event recorded before ``initial_record_time``."""
    if initial_record_time is None:
        return ledger.committed_size(session.connection()) - 1
    before = session.exec(
        select(func.max(Event.leaf_index)).where(col(Event.recorded_at) < initial_record_time)
    ).one()
    return -1 if before is None else int(before)


def _event_query(parameters: QueryParameters, *, per_page: int, after: str | None) -> EventQuery:
    return EventQuery(
        **parameters.model_dump(exclude_none=True), per_page=per_page, next_page_token=after
    )


def _parameters(row: NamedQuery) -> QueryParameters:
    return QueryParameters.model_validate(row.parameters)


def _find_query(session: Session, participant: Participant, name: str) -> NamedQuery | None:
    return session.exec(
        select(NamedQuery).where(
            col(NamedQuery.participant_id) == participant.id, col(NamedQuery.name) == name
        )
    ).first()


def _own_query(session: Session, participant: Participant, name: str) -> NamedQuery:
    """The caller's query of that name; another participant's is not found, not forbidden,
    so that its names are not revealed."""
    row = _find_query(session, participant, name)
    if row is None:
        raise NotFound(f"you have no query named {name!r}", rule="epcis.unknown_query")
    return row


def _subscription_count(session: Session, participant: Participant) -> int:
    return session.exec(
        select(func.count())
        .select_from(QuerySubscription)
        .join(NamedQuery, col(NamedQuery.id) == col(QuerySubscription.query_id))
        .where(col(NamedQuery.participant_id) == participant.id)
    ).one()


def _all_ids(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [i for i in session.exec(select(QuerySubscription.id)).all() if i is not None]


def _public(row: QuerySubscription, name: str) -> SubscriptionPublic:
    return SubscriptionPublic(
        subscription_id=row.subscription_id,
        query_name=name,
        dest=row.dest,
        created_at=row.created_at,
    )
