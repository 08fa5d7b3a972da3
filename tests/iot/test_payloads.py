"""Signed readings: RFC 8785 bytes, Ed25519, topics; every malformed message has a rule."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.errors import InvalidInput, SignatureRejected
from medtrace.iot.payloads import (
    parse_message,
    reading_topic,
    sign_reading,
    topic_sensor_id,
    verify_reading,
)
from medtrace.keys import b64, public_key_raw

KEY = Ed25519PrivateKey.generate()
READING = {
    "sensor_id": "fridge-1",
    "seq": 7,
    "time": "2026-11-22T10:00:00.000Z",
    "temperature_c": 5.25,
    "humidity_pct": 41.5,
}


def test_a_signed_reading_is_canonical_and_verifies_with_the_sensor_key() -> None:
    payload = sign_reading(READING, KEY)
    assert payload == rfc8785.dumps(json.loads(payload))
    parsed = parse_message(payload, topic_sensor="fridge-1")
    verify_reading(parsed, public_key_raw(KEY))
    assert parsed.leaf == payload
    assert parsed.reading.seq == 7
    assert parsed.signed_bytes == rfc8785.dumps(READING)


def test_a_reading_signed_by_another_key_is_refused() -> None:
    parsed = parse_message(sign_reading(READING, Ed25519PrivateKey.generate()), topic_sensor=None)
    with pytest.raises(SignatureRejected, match="does not verify") as caught:
        verify_reading(parsed, public_key_raw(KEY))
    assert caught.value.rule == "reading.signature_invalid"


def test_a_changed_temperature_breaks_the_signature() -> None:
    message = json.loads(sign_reading(READING, KEY))
    message["reading"]["temperature_c"] = 4.0
    parsed = parse_message(rfc8785.dumps(message), topic_sensor="fridge-1")
    with pytest.raises(SignatureRejected):
        verify_reading(parsed, public_key_raw(KEY))


ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493  # L, of RFC 8032


def _resigned(signature: bytes) -> bytes:
    """The signed reading's message with ``signature`` in place of its own."""
    message = json.loads(sign_reading(READING, KEY))
    message["signature"] = b64(signature)
    return rfc8785.dumps(message)


def _s_plus_order(signature: bytes) -> bytes:
    """The same signature with S replaced by S + L: equal modulo L, but not canonical."""
    s = int.from_bytes(signature[32:], "little") + ED25519_ORDER
    return signature[:32] + s.to_bytes(32, "little")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda sig: sig[:-1],  # truncated
        lambda sig: sig + b"\x00",  # one byte too many
        _s_plus_order,  # malleated: refused by RFC 8032 verifiers (S < L)
    ],
    ids=["truncated", "padded", "s-not-reduced"],
)
def test_a_tampered_signature_is_refused(tamper: Callable[[bytes], bytes]) -> None:
    original = parse_message(sign_reading(READING, KEY), topic_sensor=None)
    parsed = parse_message(_resigned(tamper(original.signature)), topic_sensor=None)
    with pytest.raises(SignatureRejected) as caught:
        verify_reading(parsed, public_key_raw(KEY))
    assert caught.value.rule == "reading.signature_invalid"


def test_a_key_of_the_wrong_length_is_refused() -> None:
    parsed = parse_message(sign_reading(READING, KEY), topic_sensor=None)
    with pytest.raises(SignatureRejected):
        verify_reading(parsed, public_key_raw(KEY)[:-1])


def test_a_reading_on_another_sensors_topic_is_refused() -> None:
    with pytest.raises(SignatureRejected, match="arrived for 'fridge-2'") as caught:
        parse_message(sign_reading(READING, KEY), topic_sensor="fridge-2")
    assert caught.value.rule == "reading.topic_mismatch"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not json", "not a signed reading"),
        (b"[1, 2]", "exactly reading, signature and sensor_id"),
        (
            rfc8785.dumps({"reading": {**READING, "seq": -1}, "signature": "", "sensor_id": "x"}),
            "seq",
        ),
        (
            json.dumps(
                {"reading": {**READING, "seq": 2**53}, "signature": "", "sensor_id": "x"}
            ).encode(),
            "seq",
        ),
        (
            rfc8785.dumps(
                {
                    "reading": {**READING, "time": "2026-11-22T10:00:00"},
                    "signature": "",
                    "sensor_id": "x",
                }
            ),
            "time zone",
        ),
        (
            rfc8785.dumps({"reading": {**READING, "extra": 1}, "signature": "", "sensor_id": "x"}),
            "extra",
        ),
        (
            rfc8785.dumps({"reading": {**READING, "seq": "7"}, "signature": "", "sensor_id": "x"}),
            "seq",
        ),
        (
            rfc8785.dumps({"reading": READING, "signature": "AAB=", "sensor_id": "fridge-1"}),
            "not a signed reading",
        ),
    ],
)
def test_malformed_messages_are_refused_with_their_rule(payload: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as caught:
        parse_message(payload, topic_sensor=None)
    assert caught.value.rule == "reading.malformed"


def test_topics_name_their_sensor() -> None:
    assert reading_topic("truck-9") == "medtrace/sensors/truck-9/readings"
    assert topic_sensor_id(reading_topic("truck-9")) == "truck-9"
    assert topic_sensor_id("medtrace/sensors/a/b/readings") is None
    assert topic_sensor_id("medtrace/alerts") is None
