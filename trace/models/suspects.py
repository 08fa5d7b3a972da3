"""Suspicion: units a counterfeit rule flagged, and the public verifications it watches.

A flag is kept per situation (its ``dedup_key``, the same as its alert's), so the verify
verdict can say ``suspect`` with every reason. Public verifications of dispensed units are
counted per unit with the place they came from as a salted hash of its network: no patient
data, no IP address in clear.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, DateTime, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class UnitSuspicion(SQLModel, table=True):
    """Why a unit is suspect (a clone, a diversion, a pack presented after dispense)."""

    __tablename__ = "unit_suspicions"
    __table_args__ = (UniqueConstraint("gtin", "serial", "dedup_key"),)

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(sa_type=String(14))
    serial: str = Field(sa_type=String(20))
    rule: str = Field(sa_type=String(64))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    dedup_key: str = Field(sa_column=Column(String(255), nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class PublicVerificationCount(SQLModel, table=True):
    """How many public verify requests of a dispensed unit came from one (hashed) place in
    one minute.

    Counted per minute rather than kept one row per request: the watch sums the unit's rows
    of its window on every verification of that unit, so with a row per request a much
    verified pack (what the watch looks for) made each verification slower than the last
    (10 ms at 24 000 requests, BENCHMARKS.md). Only dispensed units are counted, so no count
    precedes the dispense; at the far edge of the window, one minute's requests too many
    may be counted.
    """

    __tablename__ = "public_verification_counts"

    gtin: str = Field(sa_type=String(14), primary_key=True)
    serial: str = Field(sa_type=String(20), primary_key=True)
    minute: dt.datetime = Field(
        sa_column=Column(DateTime(timezone=True), primary_key=True, nullable=False)
    )
    place_hash: str = Field(
        sa_type=String(64), primary_key=True, description="HMAC-SHA256 of the network, hex"
    )
    count: int = Field(sa_type=Integer)
