"""The shapes of a signer's keys over HTTP (stations and sensors alike): a rotation, a
revocation, and a key with the time it was valid."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class KeyCreate(BaseModel):
    """A signer's next key (a rotation): raw Ed25519 public key in base64."""

    model_config = ConfigDict(extra="forbid")

    public_key: str


class KeyRevoke(BaseModel):
    """Which key to revoke: one by its public key, or (``null``) every key not yet revoked."""

    model_config = ConfigDict(extra="forbid")

    public_key: str | None = None


class KeyPublic(BaseModel):
    """One key of a station or sensor and the time it was valid."""

    public_key: str = Field(description="Raw 32-byte Ed25519 key, base64")
    valid_from: dt.datetime
    valid_until: dt.datetime | None = Field(
        description="When a rotation retired it: it signs only what is stamped before"
    )
    revoked_at: dt.datetime | None = Field(
        description="When it was revoked: nothing arriving later is accepted from it"
    )
