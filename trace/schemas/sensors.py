"""The IoT shapes on the wire: sensors, relayed readings, bindings, temperature histories.

Kept apart from ``medtrace.schemas`` (the custody shapes) so the IoT part has one home;
``medtrace.schemas.VerifyPublic`` embeds :class:`TemperaturePublic`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from medtrace.models.iot import BindingKind
from medtrace.protocol.readings import SENSOR_ID_PATTERN
from medtrace.schemas.keys import KeyPublic


class SensorCreate(BaseModel):
    """A sensor a participant registers: its id and raw Ed25519 public key in base64."""

    model_config = ConfigDict(extra="forbid")

    sensor_id: str = Field(pattern=SENSOR_ID_PATTERN)
    public_key: str


class SensorPublic(BaseModel):
    """A sensor as anyone may see it, to check the readings it signed."""

    sensor_id: str
    participant: str = Field(description="GLN of the participant that operates it")
    public_key: str = Field(description="The newest key")
    active: bool
    keys: list[KeyPublic] = Field(description="Every key it had, newest first")


class ReadingMessageIn(BaseModel):
    """One MQTT message as the bridge received it (``medtrace.protocol.readings.relayed``).

    Neither member is judged here: a message too long, on a wrong topic or no text at all is
    one message's fault, and capture stores it as that message's reject (``parse_message``)
    instead of refusing the batch it came in. The request's size bounds them both.
    """

    model_config = ConfigDict(extra="forbid")

    topic: str
    payload: str = Field(
        description="The message bytes as UTF-8 text; bytes that are no UTF-8 as the lone "
        "surrogates \\udc80 to \\udcff (PEP 383)"
    )


class ReadingStatus(StrEnum):
    """What capture did with a relayed message."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class ReadingResult(BaseModel):
    """The receipt for one relayed message."""

    status: ReadingStatus
    sensor_id: str | None
    seq: int | None
    leaf_index: int | None = Field(description="The reading's ledger leaf; null when rejected")
    rule: str | None = Field(description="Why it was rejected")


class ReadingsResponse(BaseModel):
    """Receipts in the order the messages were relayed, and their counts."""

    results: list[ReadingResult]
    accepted: int
    duplicates: int
    rejected: int


class ReadingPublic(BaseModel):
    """One reading with what it takes to prove it: its leaf and inclusion proof."""

    sensor_id: str
    seq: int
    time: dt.datetime
    temperature_c: float
    humidity_pct: float | None
    leaf_index: int
    leaf: str = Field(description="The leaf bytes, base64")
    checkpoint: str | None = Field(description="The signed checkpoint the proof is against")
    inclusion_proof: list[str] | None = Field(description="Hex hashes; null until integrated")


class RejectPublic(BaseModel):
    """A refused message and the rule it broke."""

    sensor_id: str | None
    seq: int | None
    rule: str
    message: str
    topic: str
    payload: str
    received_at: dt.datetime


class BindingCreate(BaseModel):
    """Bind a sensor to a place (GLN) or a shipment (SSCC) from ``valid_from``, by default
    from the moment the server receives the binding."""

    model_config = ConfigDict(extra="forbid")

    kind: BindingKind
    target: str = Field(description="A GLN for a place, an SSCC for a shipment")
    valid_from: dt.datetime | None = Field(
        default=None,
        description="RFC 3339 with a time zone: when the sensor began measuring there "
        "(default: now, as the server receives the binding)",
    )
    valid_to: dt.datetime | None = None


class BindingPublic(BaseModel):
    """A sensor's binding."""

    id: int
    sensor_id: str
    kind: BindingKind
    target: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None


class GrantCreate(BaseModel):
    """Let another participant's sensors measure at a place or with a shipment of yours."""

    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(description="GLN of the participant whose sensors may bind")
    kind: BindingKind
    target: str = Field(description="A GLN for a place, an SSCC for a shipment")


class GrantPublic(BaseModel):
    """A grant: who allowed whom, where, from when, and until when if revoked."""

    id: int
    grantor: str = Field(description="GLN of the participant that granted")
    grantee: str = Field(description="GLN of the participant whose sensors may bind")
    kind: BindingKind
    target: str
    granted_at: dt.datetime
    revoked_at: dt.datetime | None


class TemperatureBand(BaseModel):
    """The allowed storage range of a product, and where it comes from."""

    min_c: float
    max_c: float
    source: str = Field(description="A product profile, or the configured default")


class TemperaturePoint(BaseModel):
    """One reading of a unit's history; ``leaf_index`` makes it provable."""

    time: dt.datetime
    celsius: float
    sensor_id: str
    seq: int
    leaf_index: int
    where: str = Field(description="The GLN or SSCC the sensor was bound to")


class TemperatureGap(BaseModel):
    """A stretch of a unit's path with no readings, and why."""

    start: dt.datetime
    end: dt.datetime | None = Field(
        description="None while it lasts: the unit is still there and nothing was read since"
    )
    where: str = Field(description="A GLN, an SSCC, or 'in transit'")
    reason: str


class TemperaturePublic(BaseModel):
    """A unit's temperature history across every place and shipment it passed."""

    band: TemperatureBand
    series: list[TemperaturePoint]
    gaps: list[TemperatureGap]
    out_of_band: int = Field(description="Readings outside the band")
    lowest_c: float | None
    highest_c: float | None
