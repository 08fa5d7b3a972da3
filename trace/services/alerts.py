"""Alerts: record what the rules find, once, and who must hear of it.

Recording is one transaction: the new alerts, each one's ledger leaf, the quarantine of the
units a finding holds, and a pending delivery for every subscription that wants each alert.
An alert's leaf (``alert_leaf``) carries only what may be public (kind, rule, severity, the
place's GLN, GTIN, lot, time) and the SHA-256 of the rest (message, evidence, unit count),
which those who may read the alert can recompute from ``GET /api/v1/alerts``.

Who an alert concerns: the place it is about, the manufacturer whose GS1 company
prefix the product carries, and the regulator, who sees every alert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, or_, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from medtrace import ledger
from medtrace.contracts.expiry import StockLine, expiry_findings
from medtrace.contracts.findings import Finding
from medtrace.custody import FINAL_STATES
from medtrace.models import Participant, Role, Unit, UnitState, as_utc, utcnow
from medtrace.models.alerts import Alert, AlertKind, Delivery, Severity, Subscription, UnitHold
from medtrace.outbound import IPNetwork, check_url
from medtrace.protocol.envelope import canonical_json
from medtrace.protocol.identifiers import in_company_prefix
from medtrace.schemas.alerts import AlertPublic, SubscriptionCreate, SubscriptionPublic
from medtrace.store import units as unit_store

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


def alert_details(alert: AlertPublic | Alert) -> bytes:
    """The canonical bytes of an alert's private part, whose SHA-256 its leaf carries."""
    return canonical_json(
        {"evidence": alert.evidence, "message": alert.message, "unit_count": alert.unit_count}
    )


def alert_leaf(alert: AlertPublic | Alert) -> bytes:
    """The ledger leaf of an alert: RFC 8785 JSON of ``{"alert": {...}}``, public fields only."""
    return canonical_json(
        {
            "alert": {
                "details_sha256": hashlib.sha256(alert_details(alert)).hexdigest(),
                "gln": alert.gln,
                "gtin": alert.gtin,
                "kind": alert.kind.value,
                "lot": alert.lot,
                "raised_at": as_utc(alert.created_at)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "rule": alert.rule,
                "severity": alert.severity.value,
            }
        }
    )


def record_findings(*, session: Session, findings: Sequence[Finding]) -> list[AlertPublic]:
    """Store the findings not stored before, each with its ledger leaf, its quarantine holds
    and its deliveries, in one transaction; return the new alerts."""
    with session.begin():
        conn = session.connection()
        ledger.begin_append(conn)
        keys = [f.dedup_key for f in findings]
        known = set(session.exec(select(Alert.dedup_key).where(col(Alert.dedup_key).in_(keys))))
        fresh: dict[str, Finding] = {f.dedup_key: f for f in findings if f.dedup_key not in known}
        if not fresh:
            return []
        now = utcnow()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the leaf's precision
        alerts = [
            Alert(**{k: v for k, v in vars(f).items() if k != "quarantine_units"}, created_at=now)
            for f in fresh.values()
        ]
        # units first, then the log's head: the order capture takes its locks in
        held = [
            unit_store.quarantine_units(conn=conn, keys=f.quarantine_units, now=now)
            for f in fresh.values()
        ]
        first = ledger.append_leaves(conn, [alert_leaf(a) for a in alerts])
        for offset, alert in enumerate(alerts):
            alert.leaf_index = first + offset
        session.add_all(alerts)
        session.flush()
        for alert, units in zip(alerts, held, strict=True):
            assert alert.id is not None
            session.add_all(UnitHold(gtin=g, serial=s, alert_id=alert.id) for g, s in units)
        _add_deliveries(session, alerts)
        raised = [AlertPublic.model_validate(a, from_attributes=True) for a in alerts]
    return raised


def _add_deliveries(session: Session, alerts: Sequence[Alert]) -> None:
    """A pending delivery of each alert to every active subscription that wants it."""
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
    *,
    session: Session,
    participant: Participant,
    subscription_in: SubscriptionCreate,
    allowed_networks: Sequence[IPNetwork],
) -> SubscriptionPublic:
    """Register a webhook; its signing secret is returned this once.

    A URL whose host resolves to an address medtrace may not reach (loopback, private,
    metadata, ...; see ``medtrace.outbound``) is refused here, with its rule, so that the
    subscriber learns at once; every delivery checks it again."""
    assert participant.id is not None
    check_url(str(subscription_in.url), allowed=allowed_networks)
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
