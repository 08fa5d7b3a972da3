"""Wire shapes of alerts and webhook subscriptions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from medtrace.models import as_utc
from medtrace.models.alerts import AlertKind, Severity


class AlertPublic(BaseModel):
    """An alert as its participants, and webhook receivers, see it."""

    id: int
    kind: AlertKind
    severity: Severity
    rule: str
    message: str
    gln: str | None
    gtin: str | None
    lot: str | None
    unit_count: int
    evidence: dict[str, Any]
    created_at: dt.datetime
    leaf_index: int | None = Field(
        description="The alert's ledger leaf (provable with an inclusion proof); None only "
        "for alerts raised before alerts were recorded on the ledger"
    )

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        return as_utc(value)  # SQLite gives the stored time back without its zone


class AlertsPublic(BaseModel):
    """A page of alerts, newest first."""

    data: list[AlertPublic]
    count: int


class SubscriptionCreate(BaseModel):
    """Where to POST alerts, and which kinds (none: every kind that concerns you)."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    kinds: list[AlertKind] = Field(default_factory=list)


class SubscriptionPublic(BaseModel):
    """A subscription; ``secret`` is shown only when it is created."""

    id: int
    url: str
    kinds: list[AlertKind]
    secret: str | None = Field(
        default=None, description="HMAC-SHA256 key of the Medtrace-Signature header; shown once"
    )
