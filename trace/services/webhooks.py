"""Webhook deliveries: POST each alert to its subscribers, signed, until they acknowledge.

A delivery is pending until the receiver answers 2xx. A failure is retried with exponential
backoff (30 s doubling to at most an hour), durably, across restarts, and given up after
``max_attempts`` with the last error kept.

Every POST carries ``Medtrace-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``, computed with
the subscription's secret over ``"<t>." + body``. Binding the time into the MAC lets a
receiver refuse a replayed delivery (see :func:`verify_signature`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from medtrace.alert_schemas import AlertPublic
from medtrace.models import utcnow
from medtrace.models.alerts import Alert, Delivery, DeliveryState, Subscription

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Medtrace-Signature"
_FIRST_RETRY = dt.timedelta(seconds=30)
_LONGEST_WAIT = dt.timedelta(hours=1)


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


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(
    *, engine: Engine, http: httpx.Client, max_attempts: int = 10, limit: int = 100
) -> DeliveryReport:
    """Attempt every delivery that is due, each settled in its own transaction."""
    report = DeliveryReport()
    with Session(engine) as session:
        due = session.exec(
            select(Delivery.id)
            .where(col(Delivery.state) == DeliveryState.PENDING)
            .where(col(Delivery.next_attempt_at) <= utcnow())
            .order_by(col(Delivery.next_attempt_at))
            .limit(limit)
        ).all()
    for delivery_id in due:
        assert delivery_id is not None
        outcome = _attempt(engine, http, delivery_id, max_attempts)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _attempt(engine: Engine, http: httpx.Client, delivery_id: int, max_attempts: int) -> str:
    with Session(engine) as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        alert = session.get(Alert, delivery.alert_id)
        subscription = session.get(Subscription, delivery.subscription_id)
        assert alert is not None and subscription is not None
        body = AlertPublic.model_validate(alert, from_attributes=True).model_dump_json().encode()
        timestamp = int(utcnow().timestamp())
        error = _post(http, subscription.url, body, sign(subscription.secret, timestamp, body))
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


def _post(http: httpx.Client, url: str, body: bytes, signature: str) -> str | None:
    """POST one delivery; None on a 2xx, else what went wrong."""
    try:
        response = http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.is_success else f"HTTP {response.status_code}"
