"""Wire shapes of scan stations: a registration and the public view of a station."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from medtrace.protocol.envelope import STATION_ID_PATTERN
from medtrace.schemas.keys import KeyPublic


class StationCreate(BaseModel):
    """A station a participant registers: its id and raw Ed25519 public key in base64."""

    model_config = ConfigDict(extra="forbid")

    station_id: str = Field(pattern=STATION_ID_PATTERN)
    public_key: str


class StationPublic(BaseModel):
    """A station as anyone may see it, to check its signatures: its newest key, and every
    key it ever had (newest first), since an old event was signed by the key of its time."""

    station_id: str
    participant: str = Field(description="GLN of the participant that operates it")
    public_key: str = Field(description="The newest key")
    active: bool
    keys: list[KeyPublic]
