"""``/api/v1/alerts``: the alerts that concern the caller, and webhook subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from medtrace.api.deps import CurrentParticipant, SessionDep, SettingsDep
from medtrace.bounds import Instant
from medtrace.models.alerts import AlertKind, Severity
from medtrace.schemas.alerts import AlertsPublic, SubscriptionCreate, SubscriptionPublic
from medtrace.services import alerts

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("", response_model=AlertsPublic)
def list_alerts(
    participant: CurrentParticipant,
    session: SessionDep,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    gtin: str | None = None,
    lot: str | None = None,
    since: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertsPublic:
    """Alerts about the caller's places and products (a regulator sees all), newest first."""
    data = alerts.list_alerts(
        session=session,
        participant=participant,
        kind=kind,
        severity=severity,
        gtin=gtin,
        lot=lot,
        since=since,
        limit=limit,
    )
    return AlertsPublic(data=data, count=len(data))


@router.post(
    "/subscriptions", response_model=SubscriptionPublic, status_code=status.HTTP_201_CREATED
)
def subscribe(
    subscription_in: SubscriptionCreate,
    participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
) -> SubscriptionPublic:
    """Have alerts POSTed to a URL, signed with HMAC-SHA256 (the secret is shown once).

    The URL's host must resolve to public addresses only (or to the networks the operator
    allowed): anything else is refused with ``422 webhook.forbidden_address``."""
    return alerts.subscribe(
        session=session,
        participant=participant,
        subscription_in=subscription_in,
        allowed_networks=settings.webhooks.allowed_networks,
    )
