"""Alerts: record what the rules find, once, and who must hear of it.

Recording is one transaction: the new alerts and a pending delivery for every subscription
that wants each of them. Who an alert concerns: the place it is about, the manufacturer whose
GS1 company prefix the product carries, and the regulator, who sees every alert.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, or_, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from medtrace.alert_schemas import AlertPublic, SubscriptionCreate, SubscriptionPublic
from medtrace.contracts.expiry import StockLine, expiry_findings
from medtrace.contracts.findings import Finding
from medtrace.custody import FINAL_STATES
from medtrace.identifiers import in_company_prefix
from medtrace.models import Participant, Role, Unit, UnitState
from medtrace.models.alerts import Alert, AlertKind, Delivery, Severity, Subscription

# What a regulator's subscription carries unless it names kinds: the seeds' "temperature
# contract breaches, recalls and suspects".
REGULATOR_DEFAULT_KINDS = frozenset({AlertKind.COLD_CHAIN, AlertKind.RECALL, AlertKind.SUSPECT})


def concerns(alert: Alert, participant: Participant) -> bool:
    """Whether a participant may see (and be pushed) an alert."""
    if participant.role is Role.REGULATOR or (alert.gln and alert.gln == participant.gln):
        return True
    return bool(
        participant.role is Role.MANUFACTURER
        and participant.company_prefix
        and alert.gtin
        and in_company_prefix(alert.gtin, participant.company_prefix)
    )


def _wanted_kinds(subscription: Subscription, participant: Participant) -> frozenset[AlertKind]:
    named = frozenset(AlertKind(k) for k in subscription.kinds.split(",") if k)
    if named:
        return named
    return REGULATOR_DEFAULT_KINDS if participant.role is Role.REGULATOR else frozenset(AlertKind)


def record_findings(*, session: Session, findings: Sequence[Finding]) -> list[AlertPublic]:
    """Store the findings not stored before, with their deliveries; return the new alerts."""
    with session.begin():
        keys = [f.dedup_key for f in findings]
        known = set(session.exec(select(Alert.dedup_key).where(col(Alert.dedup_key).in_(keys))))
        fresh: dict[str, Finding] = {f.dedup_key: f for f in findings if f.dedup_key not in known}
        alerts = [Alert(**vars(f)) for f in fresh.values()]
        session.add_all(alerts)
        session.flush()
        subscribers = session.exec(
            select(Subscription, Participant)
            .join(Participant, col(Participant.id) == col(Subscription.participant_id))
            .where(col(Subscription.active))
        ).all()
        for alert in alerts:
            for subscription, participant in subscribers:
                if alert.kind in _wanted_kinds(subscription, participant) and concerns(
                    alert, participant
                ):
                    assert alert.id is not None and subscription.id is not None
                    session.add(Delivery(alert_id=alert.id, subscription_id=subscription.id))
        raised = [AlertPublic.model_validate(a, from_attributes=True) for a in alerts]
    return raised


def check_expiry(*, session: Session, today: dt.date, warn_days: int) -> list[AlertPublic]:
    """Raise expiry alerts for stock expired or expiring within ``warn_days``, per place."""
    held_states = [s for s in UnitState if s not in FINAL_STATES and s is not UnitState.IN_TRANSIT]
    rows = session.execute(
        sa_select(
            col(Unit.holder_gln),
            col(Participant.name),
            col(Unit.gtin),
            col(Unit.lot),
            col(Unit.expiry),
            func.count(),
        )
        .join(Participant, col(Participant.gln) == col(Unit.holder_gln))
        .where(
            col(Unit.state).in_(held_states),
            col(Unit.expiry) <= today + dt.timedelta(days=warn_days),
        )
        .group_by(
            col(Unit.holder_gln),
            col(Participant.name),
            col(Unit.gtin),
            col(Unit.lot),
            col(Unit.expiry),
        )
    ).all()
    session.rollback()  # the read ends here; recording opens its own transaction
    stock = [
        StockLine(gln, place, gtin, lot, expiry, n) for gln, place, gtin, lot, expiry, n in rows
    ]
    return record_findings(
        session=session, findings=expiry_findings(stock, today=today, warn_days=warn_days)
    )


def _visible_to(participant: Participant) -> ColumnElement[bool]:
    if participant.role is Role.REGULATOR:
        return true()
    place = col(Alert.gln) == participant.gln
    if participant.role is Role.MANUFACTURER and participant.company_prefix:
        return or_(place, col(Alert.gtin).like(f"_{participant.company_prefix}%"))
    return place


def list_alerts(
    *,
    session: Session,
    participant: Participant,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    gtin: str | None = None,
    lot: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
) -> list[AlertPublic]:
    """The alerts that concern ``participant``, newest first, filtered."""
    statement = select(Alert).where(_visible_to(participant))
    for column, value in (
        (Alert.kind, kind),
        (Alert.severity, severity),
        (Alert.gtin, gtin),
        (Alert.lot, lot),
    ):
        if value is not None:
            statement = statement.where(col(column) == value)
    if since is not None:
        statement = statement.where(col(Alert.created_at) >= since)
    rows = session.exec(statement.order_by(col(Alert.id).desc()).limit(limit)).all()
    return [AlertPublic.model_validate(row, from_attributes=True) for row in rows]


def subscribe(
    *, session: Session, participant: Participant, subscription_in: SubscriptionCreate
) -> SubscriptionPublic:
    """Register a webhook; its signing secret is returned this once."""
    assert participant.id is not None
    secret = secrets.token_hex(32)
    subscription = Subscription(
        participant_id=participant.id,
        url=str(subscription_in.url),
        secret=secret,
        kinds=",".join(k.value for k in subscription_in.kinds),
    )
    with session.begin():
        session.add(subscription)
        session.flush()
    assert subscription.id is not None
    return SubscriptionPublic(
        id=subscription.id, url=subscription.url, kinds=subscription_in.kinds, secret=secret
    )
