"""Capture grants: a participant lets another record custody events at one of its GLNs.

A contract packer commissions for the manufacturer, a 3PL receives and ships in the
distributor's warehouse, an integration partner sends a pharmacy chain's EPCIS: each captures
for a principal. The grant names the place (the grantor's GLN), the grantee, and an end; it
is never deleted, so the events captured under it keep their authority on record, and who
created or revoked it, and when, stays readable (``granted_by`` / ``revoked_by``: the channel
and the participant it acted for, e.g. ``api:0614141000012`` or ``cli:0614141000012``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow

#: Longest ``granted_by`` / ``revoked_by`` text: a channel, a colon and a GLN or a user name.
ACTOR_LENGTH = 80


class CaptureGrant(SQLModel, table=True):
    """``grantor`` lets ``grantee`` capture events at ``gln`` (one of the grantor's) from
    ``granted_at`` until ``ends_at`` or ``revoked_at``, whichever comes first."""

    __tablename__ = "capture_grants"
    __table_args__ = (Index("ix_capture_grants_grantee_gln", "grantee_id", "gln"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    grantor_id: int = Field(foreign_key="participants.id", index=True)
    grantee_id: int = Field(foreign_key="participants.id")
    gln: str = Field(sa_type=String(13))
    granted_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    granted_by: str = Field(sa_type=String(ACTOR_LENGTH))
    ends_at: dt.datetime = Field(sa_column=utc_column())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_by: str | None = Field(default=None, sa_type=String(ACTOR_LENGTH))
