"""EPCIS 2.0 capture jobs (REST binding ``/capture/{captureID}``): the outcome of each
document a participant posted, so it can be polled after the ``202``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, String, Text
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class CaptureJob(SQLModel, table=True):
    """One EPCIS document's capture: all its events or none (``rollback`` behaviour)."""

    __tablename__ = "epcis_capture_jobs"

    capture_id: str = Field(sa_column=Column(String(40), primary_key=True))
    participant_id: int = Field(foreign_key="participants.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    finished_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    success: bool
    event_count: int
    errors: str = Field(default="[]", sa_column=Column(Text, nullable=False))


class CapturedEvent(SQLModel, table=True):
    """An EPCIS event as its sender captured it, kept in the store, not on the ledger.

    The ledger's leaves are public and permanent; an EPCIS event may carry what is neither
    (sensor data, purchase orders in ``bizTransactionList``, extension fields). So each leaf
    of a token-captured EPCIS event holds the medtrace event read from it and this row's
    ``digest``, and this row holds the document: ``GET /epcis/events`` answers it as sent,
    and anyone shown it can check it against the leaf. The events it stands for (one per EPC)
    carry its ``event_id`` in ``events.epcis_id``.
    """

    __tablename__ = "epcis_events"

    event_id: str = Field(sa_column=Column(String(100), primary_key=True))
    participant_id: int = Field(foreign_key="participants.id", index=True)
    digest: str = Field(
        sa_type=String(64), description="SHA-256 of ``document`` in RFC 8785 form, in each leaf"
    )
    document: str = Field(
        sa_column=Column(Text, nullable=False),
        description="The event as JSON-LD, in the sender's member order, with its @context",
    )
    captured_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
