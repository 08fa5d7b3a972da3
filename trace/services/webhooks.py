"""Webhook deliveries: POST each alert (and, for :mod:`medtrace.services.subscriptions`, each
EPCIS event) to its subscribers, signed, until they acknowledge.

A delivery is pending until the receiver answers 2xx. A failure is retried with exponential
backoff (30 s doubling to at most an hour), durably, across restarts, and given up after
``max_attempts`` with the last error kept.

A receiver is someone else's server, so nothing it does may hold medtrace up:

- its URL is checked again before every delivery and the POST goes to the address checked
  (:mod:`medtrace.outbound`); a redirect is an answer like any other non-2xx, never followed;
- each delivery has one deadline for everything (DNS, connect, send, answer), not a timeout
  per read that a receiver trickling a byte at a time would renew forever;
- at most ``ANSWER_CAP`` bytes of the answer are read, then the connection is closed;
- no database connection is held while a POST is on the wire: the due deliveries are read
  in one short transaction, and each outcome settled in another;
- subscribers are served concurrently (at most ``concurrency`` at once), each one's
  deliveries in order; a subscriber whose delivery fails gets no more in that pass, so a
  dead one costs one deadline per pass, and a slow one never delays another.

Every POST carries ``Medtrace-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``, computed with
the subscription's secret over ``"<t>." + body``. Binding the time into the MAC lets a
receiver refuse a replayed delivery (see :func:`verify_signature`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from medtrace.errors import InvalidInput
from medtrace.models import utcnow
from medtrace.models.alerts import Alert, Delivery, DeliveryState, Subscription
from medtrace.models.subscriptions import QueryDelivery
from medtrace.outbound import IPNetwork, check_url
from medtrace.protocol.headers import SIGNATURE_HEADER
from medtrace.schemas.alerts import AlertPublic

log = logging.getLogger(__name__)

_FIRST_RETRY = dt.timedelta(seconds=30)
_LONGEST_WAIT = dt.timedelta(hours=1)
#: The most of a receiver's answer that is read: its status is all that counts, and a few
#: bytes of its body help whoever reads ``last_error``.
ANSWER_CAP = 64 * 1024


class BadSignature(ValueError):
    """A webhook body whose signature does not verify (forged, altered, or too old)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Medtrace-Signature`` header value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, header: str, *, now: int, tolerance: int = 300
) -> None:
    """Check a received webhook, as a receiver should; raise ``BadSignature`` if it fails."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        expected = sign(secret, timestamp, body)
    except (KeyError, ValueError) as exc:
        raise BadSignature(f"malformed {SIGNATURE_HEADER} header") from exc
    if abs(now - timestamp) > tolerance:
        raise BadSignature("the signature is too old or from the future: a replay?")
    if not hmac.compare_digest(expected, header):
        raise BadSignature("the signature does not match the body")


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are made: the settings ``webhook_*`` as plain values."""

    deadline: float = 10.0
    max_attempts: int = 10
    concurrency: int = 8
    allowed_networks: Sequence[IPNetwork] = field(default_factory=tuple)


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class Job:
    """One due delivery, with all it needs to be sent without the database."""

    delivery_id: int
    subscription_id: int
    url: str
    secret: str
    body: bytes
    content_type: str = "application/json"
    signature_headers: tuple[str, ...] = (SIGNATURE_HEADER,)


#: The outbox tables whose rows ``send_jobs`` settles: alert deliveries and EPCIS
#: subscription deliveries share the columns that say where a delivery stands.
Outbox = type[Delivery] | type[QueryDelivery]


def deliver_due(*, engine: Engine, policy: DeliveryPolicy, limit: int = 100) -> DeliveryReport:
    """Attempt every delivery that is due (at most ``limit``); each outcome is settled in its
    own transaction. Blocks until every attempt ended or met its deadline."""
    return send_jobs(engine=engine, jobs=_due_jobs(engine, limit), policy=policy, outbox=Delivery)


def send_jobs(
    *, engine: Engine, jobs: Sequence[Job], policy: DeliveryPolicy, outbox: Outbox
) -> DeliveryReport:
    """Send ``jobs`` (each subscriber's in the order given) and settle each outcome in its
    row of ``outbox``. Blocks until every attempt ended or met its deadline."""
    report = DeliveryReport()
    if jobs:
        outcomes = asyncio.run(_send_all(engine, jobs, policy, outbox))
        for outcome in outcomes:
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _due_jobs(engine: Engine, limit: int) -> list[Job]:
    """The due deliveries with their bodies, read in one transaction that ends here."""
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery, Alert, Subscription)
            .join(Alert, col(Alert.id) == col(Delivery.alert_id))
            .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
            .where(col(Delivery.state) == DeliveryState.PENDING)
            .where(col(Delivery.next_attempt_at) <= utcnow())
            .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
            .limit(limit)
        ).all()
        return [
            Job(
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                url=subscription.url,
                secret=subscription.secret,
                body=AlertPublic.model_validate(alert, from_attributes=True)
                .model_dump_json()
                .encode(),
            )
            for delivery, alert, subscription in rows
            if delivery.id is not None and subscription.id is not None
        ]


async def _send_all(
    engine: Engine, jobs: Sequence[Job], policy: DeliveryPolicy, outbox: Outbox
) -> list[str]:
    """Serve every subscriber at once (at most ``policy.concurrency``), each in order."""
    gate = asyncio.Semaphore(policy.concurrency)
    by_subscriber = [
        list(group)
        for _, group in itertools.groupby(
            sorted(jobs, key=lambda j: j.subscription_id), key=lambda j: j.subscription_id
        )
    ]
    settled = await asyncio.gather(
        *(_serve(engine, gate, queue, policy, outbox) for queue in by_subscriber)
    )
    return [outcome for outcomes in settled for outcome in outcomes]


async def _serve(
    engine: Engine,
    gate: asyncio.Semaphore,
    queue: Sequence[Job],
    policy: DeliveryPolicy,
    outbox: Outbox,
) -> list[str]:
    """One subscriber's due deliveries in order, stopping at the first that fails.

    Each subscriber has its own client: connections are pooled by the address connected to,
    and two receivers behind one address must not share a TLS connection made for the other's
    name. Proxies from the environment are ignored: the POST goes to the address checked.
    The client's own timeouts are the deadline: ``_send`` holds every delivery to it."""
    outcomes: list[str] = []
    client = httpx.AsyncClient(timeout=policy.deadline, follow_redirects=False, trust_env=False)
    async with gate, client as http:
        for job in queue:
            error = await _send(http, job, policy)
            outcomes.append(
                await asyncio.to_thread(
                    _settle, engine, outbox, job.delivery_id, error, policy.max_attempts
                )
            )
            if error is not None:
                break
    return outcomes


async def _send(http: httpx.AsyncClient, job: Job, policy: DeliveryPolicy) -> str | None:
    """Check the URL again and POST one delivery within the deadline; None on a 2xx, else
    what went wrong."""
    try:
        async with asyncio.timeout(policy.deadline):
            target = await asyncio.to_thread(check_url, job.url, allowed=policy.allowed_networks)
            timestamp = int(utcnow().timestamp())
            request = http.build_request(
                "POST",
                target.pinned_url(),
                content=job.body,
                headers={
                    **target.headers(),
                    "Content-Type": job.content_type,
                    **dict.fromkeys(job.signature_headers, sign(job.secret, timestamp, job.body)),
                },
                extensions=target.extensions(),
            )
            return await _exchange(http, request)
    except InvalidInput as exc:
        return f"{exc.rule}: {exc.message}"
    except TimeoutError:
        return f"no answer within the {policy.deadline:g} s deadline"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"


async def _exchange(http: httpx.AsyncClient, request: httpx.Request) -> str | None:
    """Send, read at most ``ANSWER_CAP`` bytes of the answer, close the stream.

    A short answer is read to its end, so that its connection can carry the subscriber's next
    delivery; a longer one is cut off, which closes the connection."""
    response = await http.send(request, stream=True)
    try:
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received >= ANSWER_CAP:
                break
    finally:
        await response.aclose()
    if response.is_success:
        return None
    redirect = " (redirects are not followed)" if response.is_redirect else ""
    return f"HTTP {response.status_code}{redirect}"


def _settle(
    engine: Engine, outbox: Outbox, delivery_id: int, error: str | None, max_attempts: int
) -> str:
    """Record one attempt's outcome in its own short transaction; which outcome it was."""
    with Session(engine) as session, session.begin():
        delivery = session.get(outbox, delivery_id)
        if delivery is None:  # its subscription ended while the POST was on the wire
            return "dropped"
        assert isinstance(delivery, Delivery | QueryDelivery)
        delivery.attempts += 1
        if error is None:
            delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, utcnow()
            return "delivered"
        delivery.last_error = error[:500]
        if delivery.attempts >= max_attempts:
            delivery.state = DeliveryState.FAILED
            log.warning("webhook delivery %s failed for good: %s", delivery_id, error)
            return "failed"
        wait = min(_FIRST_RETRY * 2 ** (delivery.attempts - 1), _LONGEST_WAIT)
        delivery.next_attempt_at = utcnow() + wait
        return "retrying"
