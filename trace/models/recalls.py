"""Recalls: a lot withdrawn by its manufacturer or a regulator.

A recall is a signed event on the ledger (its envelope is a leaf like any custody event); this
table indexes it. It flags every unit of the lot at once, without touching the units: the
capture rules and the verify verdict look the lot up here (one indexed query), so a unit
commissioned or moved later is covered too.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class Recall(SQLModel, table=True):
    """One lot's recall, as signed on the ledger."""

    __tablename__ = "recalls"
    __table_args__ = (UniqueConstraint("gtin", "lot"),)

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(sa_type=String(14))
    lot: str = Field(sa_type=String(20))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    participant_id: int = Field(foreign_key="participants.id")
    gln: str = Field(sa_type=String(13), description="The recalling participant (readPoint)")
    station_id: str | None = Field(
        default=None,
        sa_type=String(64),
        description="The signing station; None when the participant's session authenticated it",
    )
    event_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    leaf_index: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    epcis_id: str = Field(sa_type=String(100), description="CBV 2.0 event hash of its EPCIS form")
    event_time: dt.datetime = Field(sa_column=utc_column())
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
