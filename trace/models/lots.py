"""Products, lot records and their documents.

A lot record is a signed event on the ledger (its envelope is a leaf like any custody event);
these tables index it. Documents are stored content-addressed (``medtrace.documents``) and
named here by their SHA-256, the same hash the signed record carries, so a swapped file is
caught by anyone who hashes what they downloaded. An amendment is a new version of the lot
record; no version ever replaces another.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class Product(SQLModel, table=True):
    """A product as its manufacturer last described it in a lot record."""

    __tablename__ = "products"

    gtin: str = Field(sa_column=Column(String(14), primary_key=True))
    participant_id: int = Field(foreign_key="participants.id", index=True)
    name_en: str
    name_zh: str = ""
    form: str = Field(default="", description="Dosage form or device type")
    strength: str = ""
    storage_low_c: float | None = None
    storage_high_c: float | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ProductColdChain(SQLModel, table=True):
    """The cold-chain limits a product's latest lot record gave (None: the setting's)."""

    __tablename__ = "product_cold_chain"

    gtin: str = Field(sa_column=Column(String(14), primary_key=True))
    max_excursion_minutes: float | None = None
    excursion_budget_minutes: float | None = None
    freeze_c: float | None = None
    max_freeze_minutes: float | None = None
    mkt_limit_c: float | None = None
    mkt_window_hours: float | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class LotRecord(SQLModel, table=True):
    """One version of a lot's record, as signed on the ledger."""

    __tablename__ = "lot_records"
    __table_args__ = (
        UniqueConstraint("gtin", "lot", "version"),
        Index("ix_lot_records_lot", "lot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(sa_type=String(14))
    lot: str = Field(sa_type=String(20))
    version: int
    production_date: dt.date
    expiry: dt.date
    quantity: int
    event_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    leaf_index: int
    station_id: str = Field(sa_type=String(64))
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class LotDocument(SQLModel, table=True):
    """A document of one lot record version: its kind, file name and content hash."""

    __tablename__ = "lot_documents"

    id: int | None = Field(default=None, primary_key=True)
    lot_record_id: int = Field(foreign_key="lot_records.id", index=True)
    kind: str = Field(sa_type=String(32))
    filename: str = Field(sa_type=String(255))
    sha256: str = Field(sa_type=String(64), index=True)
    size: int
