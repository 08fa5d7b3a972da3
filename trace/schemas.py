"""The shapes on the wire: what clients send, and the ``...Public`` views the API returns.

The signed event is parsed only after its signature has been checked over the exact object
the station sent (``medtrace.envelope``), so parsing here can normalise nothing: every check
refuses rather than repairs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medtrace.errors import InvalidInput
from medtrace.identifiers import check_x20, parse_gln, parse_gtin
from medtrace.keys import b64decode_canonical
from medtrace.models import EventType, Role, UnitState, Verdict

STATION_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


def decode_public_key(value: str) -> bytes:
    """Decode a base64 raw Ed25519 public key (32 bytes) or raise ``InvalidInput``."""
    try:
        raw = b64decode_canonical(value)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise InvalidInput("public_key is not canonical base64", rule="key.malformed") from exc
    if len(raw) != 32:
        raise InvalidInput(f"public_key has {len(raw)} bytes, not 32", rule="key.malformed")
    return raw


class SignedEvent(BaseModel):
    """The event object a station signs (its members are exactly these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType
    gtin: str
    serial: str
    lot: str | None = None
    expiry: dt.date | None = Field(default=None, description="YYYY-MM-DD")
    gln: str = Field(description="Where the event happened")
    destination_gln: str | None = Field(default=None, description="Where a shipment goes")
    event_time: dt.datetime = Field(description="RFC 3339 with a time zone")
    station_id: str = Field(pattern=STATION_ID_PATTERN)

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str) -> str:
        if parse_gtin(value) != value:
            raise InvalidInput(f"GTIN {value!r} must be sent as 14 digits", rule="gs1.gtin_format")
        return value

    @field_validator("gln", "destination_gln")
    @classmethod
    def _gln(cls, value: str | None) -> str | None:
        return None if value is None else parse_gln(value)

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str) -> str:
        return check_x20(value, field="serial")

    @field_validator("lot")
    @classmethod
    def _lot(cls, value: str | None) -> str | None:
        return None if value is None else check_x20(value, field="lot")

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise InvalidInput("event_time needs a time zone (e.g. Z)", rule="event.naive_time")
        return value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _destination_only_for_ship(self) -> SignedEvent:
        if (self.type is EventType.SHIP) != (self.destination_gln is not None):
            raise InvalidInput(
                "destination_gln is required for ship and not allowed otherwise",
                rule="event.destination",
            )
        return self


class EnvelopeIn(BaseModel):
    """A signed envelope as a station posts it to capture."""

    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any]
    signature: str
    station_id: str = Field(pattern=STATION_ID_PATTERN)


class CaptureResult(BaseModel):
    """The receipt for one envelope: its id and its ledger leaf."""

    event_id: str
    leaf_index: int
    duplicate: bool = Field(description="True when this exact event was captured before")


class CaptureResponse(BaseModel):
    """Receipts in the order the envelopes were sent."""

    results: list[CaptureResult]
    count: int


class StationCreate(BaseModel):
    """A station a participant registers: its id and raw Ed25519 public key in base64."""

    model_config = ConfigDict(extra="forbid")

    station_id: str = Field(pattern=STATION_ID_PATTERN)
    public_key: str


class StationPublic(BaseModel):
    """A station as anyone may see it, to check its signatures."""

    station_id: str
    participant: str = Field(description="GLN of the participant that operates it")
    public_key: str
    active: bool


class ParticipantPublic(BaseModel):
    """What the public verify page may show of a participant (DESIGN.md, 'Privacy')."""

    gln: str
    name: str
    role: Role
    city: str


class PublicKeyPublic(BaseModel):
    """The log's checkpoint-signing key."""

    key_name: str
    public_key: str = Field(description="Raw 32-byte Ed25519 key, base64")
    vkey: str = Field(description="C2SP signed-note verifier key")


class LeafPublic(BaseModel):
    """One ledger leaf."""

    index: int
    data: str = Field(description="The leaf bytes, base64")


class UnitPublic(BaseModel):
    """A unit's identity and custody state."""

    gtin: str
    serial: str
    lot: str
    expiry: dt.date
    state: UnitState
    holder: ParticipantPublic | None
    digital_link: str


class VerifyEvent(BaseModel):
    """One step of a unit's path, with its leaf and inclusion proof."""

    leaf_index: int
    leaf: str = Field(description="The leaf bytes, base64")
    inclusion_proof: list[str] | None = Field(
        description="Hex hashes against the checkpoint's size; null until integrated"
    )
    event_id: str
    type: EventType
    event_time: str = Field(description="As the station signed it (RFC 3339)")
    gln: str
    destination_gln: str | None
    station_id: str
    participant: ParticipantPublic | None


class VerifyPublic(BaseModel):
    """Everything needed to check a unit's path without trusting this service."""

    verdict: Verdict
    reasons: list[str]
    unit: UnitPublic | None
    checkpoint: str | None = Field(description="The latest signed checkpoint note")
    events: list[VerifyEvent]


class CheckpointPublic(BaseModel):
    """One stored checkpoint of the log's history."""

    size: int
    note: str = Field(description="C2SP signed note, with any witness cosignatures")
