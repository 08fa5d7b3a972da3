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
