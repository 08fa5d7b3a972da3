"""Wire shapes of EPCIS 2.0 named queries and subscriptions (REST binding, ``/queries``).

The names are the binding's own (``queryName``, ``dest``, ``signatureToken``, ...), so a
partner's EPCIS client needs no mapping. Unknown fields are refused: a query parameter
medtrace does not support must not be silently ignored, or a subscription would push more
than its owner asked for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medtrace.bounds import Instant
from medtrace.models import as_utc

#: A query's name: it appears in URLs, so letters, digits and ``_.-`` only.
QUERY_NAME = r"^[A-Za-z0-9_.\-]{1,64}$"


class QueryParameters(BaseModel):
    """The SimpleEventQuery parameters a named query may hold; each list is OR-ed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event_types: list[str] | None = Field(default=None, alias="eventType", max_length=10)
    ge_event_time: Instant | None = Field(default=None, alias="GE_eventTime")
    lt_event_time: Instant | None = Field(default=None, alias="LT_eventTime")
    biz_steps: list[str] | None = Field(default=None, alias="EQ_bizStep", max_length=100)
    dispositions: list[str] | None = Field(default=None, alias="EQ_disposition", max_length=100)
    match_epc: list[str] | None = Field(default=None, alias="MATCH_epc", max_length=1000)
    match_any_epc: list[str] | None = Field(default=None, alias="MATCH_anyEPC", max_length=1000)
    biz_locations: list[str] | None = Field(default=None, alias="EQ_bizLocation", max_length=1000)
    read_points: list[str] | None = Field(default=None, alias="EQ_readPoint", max_length=1000)
    destinations: list[str] | None = Field(
        default=None, alias="EQ_destination_owning_party", max_length=1000
    )


class NamedQueryCreate(BaseModel):
    """``POST /epcis/queries``: a query kept under a name of the caller's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=QUERY_NAME)
    query: QueryParameters = Field(default_factory=QueryParameters)


class NamedQueryPublic(BaseModel):
    """A named query as its owner sees it."""

    name: str
    query: dict[str, Any]


class SubscriptionCreate(BaseModel):
    """``POST /epcis/queries/{queryName}/subscriptions``: push the query's new events to
    ``dest`` as they are captured (``stream: true``). ``schedule`` and ``reportIfEmpty``
    (which only a schedule can honour) are refused: only streams are supported. The
    ``signatureToken`` (the client's secret) keys every signature."""

    model_config = ConfigDict(extra="forbid")

    dest: str = Field(max_length=2048)
    signature_token: str | None = Field(
        default=None, alias="signatureToken", min_length=16, max_length=128
    )
    report_if_empty: bool = Field(default=False, alias="reportIfEmpty")
    stream: bool = False
    schedule: dict[str, Any] | None = None
    initial_record_time: Instant | None = Field(default=None, alias="initialRecordTime")


class SubscriptionPublic(BaseModel):
    """A subscription as its owner sees it: never its ``signatureToken``."""

    model_config = ConfigDict(populate_by_name=True)

    subscription_id: str = Field(serialization_alias="subscriptionID")
    query_name: str = Field(serialization_alias="queryName")
    dest: str
    stream: bool = True
    created_at: dt.datetime = Field(serialization_alias="createdAt")

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        return as_utc(value)  # SQLite gives the stored time back without its zone
