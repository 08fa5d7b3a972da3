"""Suspicion: units a counterfeit rule flagged, and the public verifications it watches.

A flag is kept per situation (its ``dedup_key``, the same as its alert's), so the verify
verdict can say ``suspect`` with every reason. Public verifications of dispensed units are
counted per unit with the place they came from as a salted hash of its network: no patient
data, no IP address in clear.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
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


class PublicVerification(SQLModel, table=True):
    """One public verify request of a dispensed unit: when, and from which (hashed) place."""

    __tablename__ = "public_verifications"
    __table_args__ = (Index("ix_public_verifications_unit", "gtin", "serial", "verified_at"),)

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(sa_type=String(14))
    serial: str = Field(sa_type=String(20))
    place_hash: str = Field(sa_type=String(64), description="HMAC-SHA256 of the network, hex")
    verified_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
