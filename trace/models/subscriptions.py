"""EPCIS 2.0 named queries, their subscriptions, and the outbox of events pushed to them.

A subscription is pushed the events its query matches as they are captured (EPCIS 2.0 §8.2.5,
the REST binding's ``stream: true``). Its ``cursor`` is the last ledger leaf it was given: a
dispatcher pass reads the matching events after it through the query service, writes one
outbox row per event and moves the cursor, in one transaction. Leaves commit in index order
(the ledger's head row is locked until its appender commits), so a cursor never passes an
event still to come. An outbox row is pending until the receiver answers 2xx, so a restart
loses nothing; an event is sent again only when its acknowledgement was lost (at least once,
the same ``eventID`` each time).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from medtrace.models import enum_type, utc_column, utcnow
from medtrace.models.alerts import DeliveryState


class NamedQuery(SQLModel, table=True):
    """A participant's EPCIS query kept under a name (``POST /queries``)."""

    __tablename__ = "epcis_queries"
    __table_args__ = (UniqueConstraint("participant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participants.id")
    name: str = Field(sa_type=String(64))
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class QuerySubscription(SQLModel, table=True):
    """A webhook that is pushed the events of a named query as they are captured."""

    __tablename__ = "epcis_subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    query_id: int = Field(foreign_key="epcis_queries.id", index=True)
    dest: str = Field(sa_type=String(2048))
    signature_token: str = Field(sa_type=String(128))
    cursor: int = Field(
        default=-1,
        sa_column=Column(BigInteger, nullable=False),
        description="The last ledger leaf index given to the outbox (-1: none yet)",
    )
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class QueryDelivery(SQLModel, table=True):
    """One event to one subscription, until its receiver acknowledges it."""

    __tablename__ = "epcis_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "leaf_index"),
        Index("ix_epcis_deliveries_state", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="epcis_subscriptions.id")
    leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    event: str = Field(sa_column=Column(Text, nullable=False), description="The EPCIS event JSON")
    state: DeliveryState = Field(default=DeliveryState.PENDING, sa_type=enum_type(DeliveryState))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=String(500))
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    delivered_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
