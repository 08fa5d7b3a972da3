"""Wire shapes of the verify answer: a unit, its path, its proofs, its flags."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from medtrace.models import EventType, UnitState, Verdict
from medtrace.schemas.participants import ParticipantPublic
from medtrace.schemas.sensors import TemperaturePublic


class UnitPublic(BaseModel):
    """A unit's identity and custody state."""

    gtin: str
    serial: str
    lot: str
    expiry: dt.date
    state: UnitState
    holder: ParticipantPublic | None
    digital_link: str
    parent_sscc: str | None = Field(
        default=None, description="The case or pallet it is packed in now (its page: /00/{sscc})"
    )


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
    station_id: str | None = Field(description="The signing station; null for token capture")
    authenticated_by: Literal["station_signature", "participant_token"] = Field(
        description="A station's Ed25519 signature in the leaf, or only the participant's API "
        "token (EPCIS capture: the leaf names the participant and carries no signature)"
    )
    participant: ParticipantPublic | None


class VerifyReading(BaseModel):
    """A temperature reading the verify page charts, with its leaf (the message its sensor
    signed) and inclusion proof, so the page checks the value it draws against the leaf."""

    sensor_id: str
    seq: int
    leaf_index: int
    leaf: str = Field(description="The leaf bytes, base64")
    inclusion_proof: list[str] | None = Field(
        description="Hex hashes against the checkpoint's size; null until integrated"
    )


class VerifyDocument(BaseModel):
    """A document of a lot record, as its signed leaf names it, with where to download it."""

    kind: str
    filename: str
    sha256: str = Field(description="SHA-256 of the file, hex, as the manufacturer signed it")
    size: int
    url: str = Field(description="The file by content hash: /api/v1/documents/{sha256}")


class VerifyLotRecord(BaseModel):
    """One version of the unit's lot record, with its leaf and inclusion proof, so a reader
    can check the record and each document's hash against the log like any event."""

    version: int
    leaf_index: int
    leaf: str = Field(description="The leaf bytes, base64 (the station's signed envelope)")
    inclusion_proof: list[str] | None = Field(
        description="Hex hashes against the checkpoint's size; null until integrated"
    )
    event_id: str
    event_time: str = Field(description="As the station signed it (RFC 3339)")
    gln: str
    station_id: str
    participant: ParticipantPublic | None
    documents: list[VerifyDocument]


class QuarantinePublic(BaseModel):
    """Why medtrace quarantined a unit (a rule's alert), provable by the alert's leaf."""

    rule: str
    reason: str
    raised_at: dt.datetime
    leaf_index: int
    leaf: str = Field(description="The alert's leaf bytes, base64: RFC 8785 JSON {'alert': …}")
    inclusion_proof: list[str] | None = Field(
        description="Hex hashes against the checkpoint's size; null until integrated"
    )


class VerifyPublic(BaseModel):
    """Everything needed to check a unit's path without trusting this service."""

    verdict: Verdict
    reasons: list[str]
    unit: UnitPublic | None
    checkpoint: str | None = Field(description="The latest signed checkpoint note")
    events: list[VerifyEvent]
    temperature: TemperaturePublic | None = Field(
        default=None, description="Temperature history: series, allowed band and gaps"
    )
    readings: list[VerifyReading] = Field(
        default_factory=list,
        description="The leaf and inclusion proof of every reading of the temperature series",
    )
    lot_records: list[VerifyLotRecord] = Field(
        default_factory=list,
        description="Every version of the lot's signed record and its documents, oldest first",
    )
    quarantine: QuarantinePublic | None = Field(
        default=None,
        description="The alert that quarantined the unit, while no QA release came after it",
    )
