"""Signed sensor readings: what a sensor publishes on MQTT and what the ledger records.

A reading is a small JSON object (sensor id, sequence number, time, temperature in °C and,
where the logger measures it, relative humidity in %). The sensor signs the RFC 8785 (JCS)
canonical bytes of that object with its Ed25519 key and publishes, at QoS 1 on
``medtrace/sensors/{sensor_id}/readings``, the canonical JSON of
``{"reading": {...}, "signature": "<base64>", "sensor_id": "..."}``. Those message bytes,
canonicalised again, are the reading's ledger leaf (one leaf per reading), so anyone holding
the leaf and the sensor's public key can check the reading without trusting medtrace, exactly
as for a station's envelope (``medtrace.envelope``).

The pair (sensor id, sequence number) names a reading once and for all: a redelivered message
carries the same pair and the same bytes, which is how capture stays exactly-once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medtrace.envelope import MAX_SAFE_INTEGER, canonical_json
from medtrace.errors import InvalidInput, SignatureRejected
from medtrace.keys import b64, b64decode_canonical, verify_ed25519

SENSOR_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
TOPIC_PREFIX = "medtrace/sensors/"
TOPIC_SUFFIX = "/readings"
TOPIC_FILTER = TOPIC_PREFIX + "+" + TOPIC_SUFFIX
MAX_SEQ = MAX_SAFE_INTEGER  # RFC 8785 numbers are IEEE 754 doubles: integers beyond lose digits


def reading_topic(sensor_id: str) -> str:
    """The MQTT topic a sensor publishes its readings on."""
    return f"{TOPIC_PREFIX}{sensor_id}{TOPIC_SUFFIX}"


def topic_sensor_id(topic: str) -> str | None:
    """The sensor id a reading topic names, or None for any other topic (and for a name that
    is no sensor id: anything may arrive on a broker)."""
    if topic.startswith(TOPIC_PREFIX) and topic.endswith(TOPIC_SUFFIX):
        middle = topic[len(TOPIC_PREFIX) : -len(TOPIC_SUFFIX)]
        return middle if re.fullmatch(SENSOR_ID_PATTERN, middle) else None
    return None


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``, the form sensors sign."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SignedReading(BaseModel):
    """The reading object a sensor signs (its members are exactly these)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    sensor_id: str = Field(pattern=SENSOR_ID_PATTERN)
    seq: int = Field(ge=0, le=MAX_SEQ, description="Strictly increasing per sensor")
    time: str = Field(description="RFC 3339 with a time zone, when the reading was taken")
    temperature_c: float | int = Field(ge=-273.15, le=1000)
    humidity_pct: float | int | None = Field(default=None, ge=0, le=100)

    @field_validator("time")
    @classmethod
    def _aware_time(cls, value: str) -> str:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("time is not RFC 3339") from exc
        if moment.tzinfo is None:
            raise ValueError("time needs a time zone (e.g. Z)")
        return value

    @property
    def taken_at(self) -> dt.datetime:
        """The reading's time as an aware UTC datetime."""
        return dt.datetime.fromisoformat(self.time).astimezone(dt.UTC)


def _message_bytes(reading_bytes: bytes, signature: str, sensor_id: str) -> bytes:
    """The canonical JSON of ``{"reading", "sensor_id", "signature"}`` from the reading's
    canonical bytes: RFC 8785 §3.2.3 writes an object's members sorted by name, each value in
    its own canonical form, so the message is composed without canonicalising the reading
    twice (this is the hot path of capture)."""
    return b"".join(
        (
            b'{"reading":',
            reading_bytes,
            b',"sensor_id":',
            canonical_json(sensor_id),
            b',"signature":',
            canonical_json(signature),
            b"}",
        )
    )


def sign_reading(reading: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Sign a reading and return the MQTT payload (canonical JSON of the signed message)."""
    signed = canonical_json(dict(reading))
    return _message_bytes(signed, b64(key.sign(signed)), str(reading["sensor_id"]))


def payload_digest(payload: bytes) -> str:
    """SHA-256 of a message as received, in hex: what tells a redelivery from a replay."""
    return hashlib.sha256(payload).hexdigest()


class ParsedMessage(BaseModel):
    """A reading message that parsed: the reading, its signature and the leaf it would be."""

    model_config = ConfigDict(frozen=True)

    reading: SignedReading
    signature: bytes
    signed_bytes: bytes
    leaf: bytes


def parse_message(payload: bytes, *, topic_sensor: str | None) -> ParsedMessage:
    """Parse a message off the wire, before any key is looked up.

    Raises ``InvalidInput`` (rule ``reading.malformed``) for anything that is not a signed
    reading, and ``SignatureRejected`` (``reading.topic_mismatch``) when the reading names
    another sensor than its topic: a sensor may only speak on its own topic.
    """
    try:
        message = json.loads(payload)
        if not isinstance(message, dict) or set(message) != {"reading", "signature", "sensor_id"}:
            raise ValueError("expected exactly reading, signature and sensor_id")
        reading = SignedReading.model_validate(message["reading"])
        signature = b64decode_canonical(message["signature"])
    except (ValueError, TypeError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidInput(f"not a signed reading: {exc}", rule="reading.malformed") from exc
    if message["sensor_id"] != reading.sensor_id or (
        topic_sensor is not None and topic_sensor != reading.sensor_id
    ):
        raise SignatureRejected(
            f"reading of sensor {reading.sensor_id!r} arrived for {topic_sensor!r}",
            rule="reading.topic_mismatch",
        )
    signed = canonical_json(message["reading"])
    return ParsedMessage(
        reading=reading,
        signature=signature,
        signed_bytes=signed,
        leaf=_message_bytes(signed, message["signature"], reading.sensor_id),
    )


def verify_reading(parsed: ParsedMessage, public_key_raw: bytes) -> None:
    """Check the sensor's signature over the reading; ``SignatureRejected`` if it fails."""
    try:
        verify_ed25519(public_key_raw, parsed.signature, parsed.signed_bytes)
    except ValueError as exc:
        raise SignatureRejected(
            f"the signature of sensor {parsed.reading.sensor_id!r} does not verify",
            rule="reading.signature_invalid",
        ) from exc
