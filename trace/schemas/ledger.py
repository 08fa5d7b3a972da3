"""Wire shapes of the log: its key, its leaves, its checkpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PublicKeyPublic(BaseModel):
    """The log's checkpoint-signing key."""

    key_name: str
    public_key: str = Field(description="Raw 32-byte Ed25519 key, base64")
    vkey: str = Field(description="C2SP signed-note verifier key")


class LeafPublic(BaseModel):
    """One ledger leaf."""

    index: int
    data: str = Field(description="The leaf bytes, base64")


class CheckpointPublic(BaseModel):
    """One stored checkpoint of the log's history."""

    size: int
    note: str = Field(description="C2SP signed note, with any witness cosignatures")
