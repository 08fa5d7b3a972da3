"""Alerts raised by the rules, webhook subscriptions, the deliveries between them, and the
quarantine holds an alert puts on units.

An alert is stored once per situation (its ``dedup_key``): a rule that runs every hour on
the same expiring lot does not raise it again. Each matching subscription gets a delivery
row in the same transaction as the alert, so a push is never lost between "raised" and
"sent": a delivery stays pending until a webhook receiver answers 2xx.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from medtrace.models import enum_type, utc_column, utcnow


class AlertKind(StrEnum):
    """What an alert is about."""

    EXPIRY = "expiry"
    RECALL = "recall"
    COLD_CHAIN = "cold_chain"
    SUSPECT = "suspect"
    SENSOR_SILENT = "sensor_silent"
    REORDER = "reorder"


class Severity(StrEnum):
    """How urgent an alert is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class DeliveryState(StrEnum):
    """Where a webhook delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Alert(SQLModel, table=True):
    """One situation a rule found: what, where, which lot, and the evidence."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_gtin_lot", "gtin", "lot"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: AlertKind = Field(sa_type=enum_type(AlertKind))
    severity: Severity = Field(sa_type=enum_type(Severity))
    rule: str = Field(sa_type=String(64))
    dedup_key: str = Field(sa_column=Column(String(255), unique=True, nullable=False))
    gln: str | None = Field(default=None, sa_type=String(13), index=True)
    gtin: str | None = Field(default=None, sa_type=String(14))
    lot: str | None = Field(default=None, sa_type=String(20))
    unit_count: int = 0
    message: str = Field(sa_column=Column(Text, nullable=False))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    leaf_index: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, unique=True, nullable=True),
        description="Its ledger leaf (None only for alerts raised before alerts were leaves)",
    )
    published_at: dt.datetime | None = Field(
        default=None,
        sa_column=utc_column(nullable=True),
        description="When the MQTT broker acknowledged it on the alert topic",
    )


class UnitHold(SQLModel, table=True):
    """A unit quarantined by an alert (a cold-chain breach), until a QA ``release`` event.

    The custody flag ``Unit.quarantined`` is what blocks the unit; this row says why, and the
    alert's leaf proves it. A hold is current while no release of the unit came after it.
    """

    __tablename__ = "unit_holds"
    __table_args__ = (Index("ix_unit_holds_unit", "gtin", "serial"),)

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(sa_type=String(14))
    serial: str = Field(sa_type=String(20))
    alert_id: int = Field(foreign_key="alerts.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Subscription(SQLModel, table=True):
    """A participant's webhook: where to POST alerts, and the secret that signs them."""

    __tablename__ = "alert_subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participants.id", index=True)
    url: str = Field(sa_type=String(2048))
    secret: str = Field(sa_type=String(64))
    kinds: str = Field(default="", sa_type=String(255), description="comma-separated; empty = all")
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Delivery(SQLModel, table=True):
    """One alert to one subscription, until a receiver acknowledges it."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_state", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alerts.id")
    subscription_id: int = Field(foreign_key="alert_subscriptions.id")
    state: DeliveryState = Field(default=DeliveryState.PENDING, sa_type=enum_type(DeliveryState))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=String(500))
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    delivered_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
