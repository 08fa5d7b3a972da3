"""China's drug traceability codes (药品追溯码): which product each drug code names.

A China code's first 7 digits (药品标识码) identify a drug and its package; its manufacturer
maps them to one of its GTINs here. A pack carrying such a code is then the unit with that
GTIN and the whole 20-digit code as serial (AI 21 takes 20 characters), so custody, the
ledger, EPCIS and FHIR treat it like any GS1-serialised unit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class CnDrugCode(SQLModel, table=True):
    """A drug identification code and the product (GTIN) its manufacturer mapped it to."""

    __tablename__ = "cn_drug_codes"

    drug_code: str = Field(sa_column=Column(String(7), primary_key=True))
    gtin: str = Field(sa_type=String(14), index=True)
    participant_id: int = Field(foreign_key="participants.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
