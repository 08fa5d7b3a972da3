"""Signed sensor readings: what a sensor publishes on MQTT and what the ledger records.

A reading is a small JSON object (sensor id, sequence number, time, temperature in °C and,
where the logger measures it, relative humidity in %). The sensor signs the RFC 8785 (JCS)
canonical bytes of that object with its Ed25519 key and publishes, at QoS 1 on
``medtrace/sensors/{sensor_id}/readings``, the canonical JSON of
``{"reading": {...}, "signature": "<base64>", "sensor_id": "..."}``. Those message bytes,
canonicalised again, are the reading's ledger leaf (one leaf per reading), so anyone holding
the leaf and the sensor's public key can check the reading without trusting medtrace, exactly
as for a station's envelope (``medtrace.protocol.envelope``).

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

from medtrace.errors import InvalidInput, SignatureRejected
from medtrace.protocol.envelope import MAX_SAFE_INTEGER, canonical_json
from medtrace.protocol.keys import b64, b64decode_canonical, verify_ed25519

SENSOR_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
TOPIC_PREFIX = "medtrace/sensors/"
TOPIC_SUFFIX = "/readings"
TOPIC_FILTER = TOPIC_PREFIX + "+" + TOPIC_SUFFIX
MAX_SEQ = MAX_SAFE_INTEGER  # RFC 8785 numbers are IEEE 754 doubles: integers beyond lose digits
# A signed reading is some 250 bytes and its topic under 100 characters; the limits leave
# room and bound what a poison message costs the bridge, the API and the rejects table.
MAX_PAYLOAD_BYTES = 4096
MAX_TOPIC_CHARS = 256


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
        try:  # 0001-01-01T00:00:00+01:00 is a datetime, but no UTC datetime
            moment.astimezone(dt.UTC)
        except OverflowError as exc:
            raise ValueError("time is outside the years 1 to 9999 in UTC") from exc
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


def relayed(topic: str, payload: bytes) -> tuple[str, str]:
    """What a bridge relays of a message (``ReadingMessageIn``): its topic, and its payload
    as text, each cut one past its limit (enough for ``parse_message`` to refuse it, so one
    huge message cannot make a whole batch's request too large). Bytes that are no UTF-8
    travel as PEP 383 surrogate escapes (``\\udc80`` to ``\\udcff`` in the JSON), so the
    server judges the bytes the sensor sent, not a repaired copy."""
    text = payload[: MAX_PAYLOAD_BYTES + 1].decode("utf-8", "surrogateescape")
    return topic[: MAX_TOPIC_CHARS + 1], text


def relayed_payload(text: str) -> bytes:
    """The bytes a relayed payload stands for (see ``relayed``). A lone surrogate that is no
    escaped byte stays bytes that are no UTF-8, which ``parse_message`` refuses."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


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


def parse_message(topic: str, payload: bytes) -> ParsedMessage:
    """Judge one MQTT message as a broker delivered it, before any key is looked up.

    This is the one place where raw input from the broker is judged: anything may be
    published, and capture must decide each message on its own without failing the others,
    so every way a message can be wrong ends here as a typed error with its rule, never
    as another exception:

    - ``InvalidInput`` ``reading.bad_topic``: the topic is not
      ``medtrace/sensors/{sensor id}/readings`` (too long, no valid sensor id);
    - ``InvalidInput`` ``reading.too_large``: a payload over ``MAX_PAYLOAD_BYTES``;
    - ``InvalidInput`` ``reading.malformed``: not UTF-8, not JSON (including ``NaN``,
      ``Infinity``, duplicate member names and nesting too deep to parse), not an object of
      exactly ``reading``, ``signature`` and ``sensor_id``, a reading out of its ranges or a
      time outside what a UTC datetime can hold;
    - ``SignatureRejected`` ``reading.topic_mismatch``: the reading names another sensor than
      its topic (a sensor may only speak on its own topic).
    """
    topic_sensor = topic_sensor_id(topic)
    if topic_sensor is None:
        raise InvalidInput(
            f"topic {topic[:MAX_TOPIC_CHARS]!r} is not {TOPIC_PREFIX}{{sensor id}}{TOPIC_SUFFIX}",
            rule="reading.bad_topic",
        )
    message = _json_object(payload)
    try:
        reading = SignedReading.model_validate(message["reading"])
        signature = b64decode_canonical(message["signature"])
    except (ValueError, TypeError, ValidationError) as exc:
        raise InvalidInput(f"not a signed reading: {exc}", rule="reading.malformed") from exc
    if message["sensor_id"] != reading.sensor_id or topic_sensor != reading.sensor_id:
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


def _json_object(payload: bytes) -> dict[str, Any]:
    """The payload as the JSON object of a signed message; ``InvalidInput`` otherwise.

    The size is checked first, so no parser ever sees more than ``MAX_PAYLOAD_BYTES``; the
    parser itself recurses per nesting level, and a payload of a few thousand ``[`` would
    reach Python's recursion limit: that ``RecursionError`` is this payload's fault, not the
    server's.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"a reading message has at most {MAX_PAYLOAD_BYTES} bytes, this one more",
            rule="reading.too_large",
        )
    try:
        message = json.loads(
            payload.decode("utf-8"),
            parse_constant=_no_constant,
            object_pairs_hook=_unique_members,
        )
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise _malformed("nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and the refusals of the two hooks
        raise _malformed(f"not JSON: {exc}") from exc
    if not isinstance(message, dict) or set(message) != {"reading", "signature", "sensor_id"}:
        raise _malformed("expected exactly reading, signature and sensor_id")
    return message


def _malformed(why: str) -> InvalidInput:
    return InvalidInput(f"not a signed reading: {why}", rule="reading.malformed")


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are no JSON (RFC 8259 §6), whatever Python's
    parser accepts by default."""
    raise ValueError(f"{name} is not a JSON number")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names are unique: with a duplicate, a reader keeping the first
    and one keeping the last would see two different readings (RFC 8259 §4)."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member names")
    return members


def verify_reading(parsed: ParsedMessage, public_key_raw: bytes) -> None:
    """Check the sensor's signature over the reading; ``SignatureRejected`` if it fails."""
    try:
        verify_ed25519(public_key_raw, parsed.signature, parsed.signed_bytes)
    except ValueError as exc:
        raise SignatureRejected(
            f"the signature of sensor {parsed.reading.sensor_id!r} does not verify",
            rule="reading.signature_invalid",
        ) from exc
