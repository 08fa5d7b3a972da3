"""Capture grants on the wire: what a grantor sends, what both parties read."""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class CaptureGrantCreate(BaseModel):
    """Let another participant capture events at one of your GLNs until ``ends_at``."""

    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(description="GLN of the participant that will capture for you")
    gln: str = Field(description="Your GLN where the grantee may capture (the event's GLN)")
    ends_at: AwareDatetime = Field(description="When the grant ends (with a time zone)")


class CaptureGrantPublic(BaseModel):
    """A capture grant, with its audit: who created and revoked it, and when."""

    id: int
    grantor: str = Field(description="GLN of the principal, who granted")
    grantee: str = Field(description="GLN of the participant that captures for it")
    gln: str = Field(description="Where the grantee may capture")
    granted_at: dt.datetime
    granted_by: str = Field(description="Who created it: the channel and its actor")
    ends_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None
    active: bool = Field(description="Whether it lets the grantee capture now")
