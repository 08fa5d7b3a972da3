"""Signed readings: RFC 8785 bytes, Ed25519, topics; every malformed message has a rule."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from medtrace.errors import InvalidInput, MedtraceError, SignatureRejected
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import (
    MAX_PAYLOAD_BYTES,
    ParsedMessage,
    parse_message,
    reading_topic,
    relayed,
    relayed_payload,
    sign_reading,
    topic_sensor_id,
    verify_reading,
)

KEY = Ed25519PrivateKey.generate()
READING = {
    "sensor_id": "fridge-1",
    "seq": 7,
    "time": "2026-11-22T10:00:00.000Z",
    "temperature_c": 5.25,
    "humidity_pct": 41.5,
}
TOPIC = reading_topic("fridge-1")


def test_a_signed_reading_is_canonical_and_verifies_with_the_sensor_key() -> None:
    payload = sign_reading(READING, KEY)
    assert payload == rfc8785.dumps(json.loads(payload))
    parsed = parse_message(TOPIC, payload)
    verify_reading(parsed, public_key_raw(KEY))
    assert parsed.leaf == payload
    assert parsed.reading.seq == 7
    assert parsed.signed_bytes == rfc8785.dumps(READING)


def test_a_reading_signed_by_another_key_is_refused() -> None:
    parsed = parse_message(TOPIC, sign_reading(READING, Ed25519PrivateKey.generate()))
    with pytest.raises(SignatureRejected, match="does not verify") as caught:
        verify_reading(parsed, public_key_raw(KEY))
    assert caught.value.rule == "reading.signature_invalid"


def test_a_changed_temperature_breaks_the_signature() -> None:
    message = json.loads(sign_reading(READING, KEY))
    message["reading"]["temperature_c"] = 4.0
    parsed = parse_message(TOPIC, rfc8785.dumps(message))
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
    original = parse_message(TOPIC, sign_reading(READING, KEY))
    parsed = parse_message(TOPIC, _resigned(tamper(original.signature)))
    with pytest.raises(SignatureRejected) as caught:
        verify_reading(parsed, public_key_raw(KEY))
    assert caught.value.rule == "reading.signature_invalid"


def test_a_key_of_the_wrong_length_is_refused() -> None:
    parsed = parse_message(TOPIC, sign_reading(READING, KEY))
    with pytest.raises(SignatureRejected):
        verify_reading(parsed, public_key_raw(KEY)[:-1])


def test_a_reading_on_another_sensors_topic_is_refused() -> None:
    with pytest.raises(SignatureRejected, match="arrived for 'fridge-2'") as caught:
        parse_message(reading_topic("fridge-2"), sign_reading(READING, KEY))
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
        parse_message(TOPIC, payload)
    assert caught.value.rule == "reading.malformed"


def test_topics_name_their_sensor() -> None:
    assert reading_topic("truck-9") == "medtrace/sensors/truck-9/readings"
    assert topic_sensor_id(reading_topic("truck-9")) == "truck-9"
    assert topic_sensor_id("medtrace/sensors/a/b/readings") is None
    assert topic_sensor_id("medtrace/alerts") is None


def _signed(**changes: Any) -> bytes:
    """A message signed by KEY whose reading has ``changes``: only the change is wrong."""
    return sign_reading({**READING, **changes}, KEY)


def _raw(reading: str) -> bytes:
    """A message written by hand around a reading's JSON text (what no encoder writes)."""
    return b'{"reading":' + reading.encode() + b',"sensor_id":"fridge-1","signature":"AA=="}'


FIELDS = '"sensor_id":"fridge-1","seq":7,"time":"2026-11-22T10:00:00.000Z"'

POISON = {  # the messages of issue 18 that stopped ingestion, and their kin
    "2000 nested [": (TOPIC, b"[" * 2000, "reading.malformed", "nested too deeply"),
    "5000 bytes": (TOPIC, b" " * 5000, "reading.too_large", "at most 4096 bytes"),
    "topic over 256": (reading_topic("x" * 300), _signed(), "reading.bad_topic", "is not"),
    "year 1 east of UTC": (
        TOPIC,
        _signed(time="0001-01-01T00:00:00+01:00"),
        "reading.malformed",
        "outside the years",
    ),
    "year 9999 west of UTC": (
        TOPIC,
        _signed(time="9999-12-31T23:59:59-01:00"),
        "reading.malformed",
        "outside the years",
    ),
    "not UTF-8": (TOPIC, b'{"reading":"\xff"}', "reading.malformed", "not UTF-8"),
    "lone surrogate": (
        TOPIC,
        "\ud800".encode("utf-8", "surrogatepass"),
        "reading.malformed",
        "UTF-8",
    ),
    "empty": (TOPIC, b"", "reading.malformed", "not JSON"),
    "a string": (TOPIC, b'"reading"', "reading.malformed", "exactly reading"),
    "null": (TOPIC, b"null", "reading.malformed", "exactly reading"),
    "NaN": (TOPIC, _raw("{" + FIELDS + ',"temperature_c":NaN}'), "reading.malformed", "NaN"),
    "Infinity": (
        TOPIC,
        _raw("{" + FIELDS + ',"temperature_c":-Infinity}'),
        "reading.malformed",
        "Infinity",
    ),
    "1e400": (TOPIC, _raw("{" + FIELDS + ',"temperature_c":1e400}'), "reading.malformed", "temp"),
    "2**64": (
        TOPIC,
        _raw("{" + FIELDS + f',"temperature_c":{2**64}}}'),
        "reading.malformed",
        "temp",
    ),
    "seq 2**64": (
        TOPIC,
        _raw(f'{{"sensor_id":"fridge-1","seq":{2**64},"time":"2026-11-22T10:00:00Z"}}'),
        "reading.malformed",
        "seq",
    ),
    "humidity -1e400": (
        TOPIC,
        _raw("{" + FIELDS + ',"temperature_c":5,"humidity_pct":-1e400}'),
        "reading.malformed",
        "humid",
    ),
    "duplicate member": (
        TOPIC,
        _raw("{" + FIELDS + ',"temperature_c":5,"temperature_c":50}'),
        "reading.malformed",
        "duplicate member names",
    ),
    "huge string": (TOPIC, _signed(time="9" * 3500), "reading.malformed", "RFC 3339"),
    "topic with +": ("medtrace/sensors/+/readings", _signed(), "reading.bad_topic", "is not"),
    "topic with #": ("medtrace/sensors/#", _signed(), "reading.bad_topic", "is not"),
    "topic with NUL": (reading_topic("fridge\x00-1"), _signed(), "reading.bad_topic", "is not"),
    "unicode topic": (reading_topic("fridge-\u00fc"), _signed(), "reading.bad_topic", "is not"),
}


@pytest.mark.parametrize(("topic", "payload", "rule", "match"), POISON.values(), ids=POISON)
def test_poison_messages_are_refused_with_their_rule(
    topic: str, payload: bytes, rule: str, match: str
) -> None:
    with pytest.raises(MedtraceError, match=match) as caught:
        parse_message(topic, payload)
    assert caught.value.rule == rule
    assert isinstance(caught.value, InvalidInput)


def test_a_reading_at_the_edges_of_utc_is_a_reading() -> None:
    for time in ("0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"):
        parsed = parse_message(TOPIC, _signed(time=time))
        assert parsed.reading.taken_at.tzinfo is dt.UTC


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe{}", b"x" * (MAX_PAYLOAD_BYTES + 100), "\u00e9t\u00e9".encode(), b""],
    ids=["not UTF-8", "too large", "UTF-8", "empty"],
)
def test_a_relayed_payload_stands_for_the_bytes_received_up_to_the_limit(payload: bytes) -> None:
    topic, text = relayed(TOPIC, payload)
    assert topic == TOPIC
    assert relayed_payload(text) == payload[: MAX_PAYLOAD_BYTES + 1]
    text.encode("utf-8", "surrogateescape")  # carried in JSON as escapes, never refused


def _judged(topic: str, payload: bytes) -> None:
    """The property: a message parses into a reading with a UTC time, or is refused with a
    reading rule; nothing else may come out of the parser."""
    try:
        parsed = parse_message(topic, payload)
    except (InvalidInput, SignatureRejected) as exc:
        assert exc.rule.startswith("reading."), exc.rule
        return
    assert isinstance(parsed, ParsedMessage)
    assert parsed.reading.taken_at.utcoffset() == dt.timedelta(0)


TOPICS = st.just(TOPIC) | st.text(max_size=300).map(lambda s: f"medtrace/sensors/{s}/readings")
NUMBERS = (
    st.integers()
    | st.integers(min_value=2**53 - 2, max_value=2**64 + 2)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([-0.0, 0, 1e400, -1e400, 2**64, -(2**63)])
)
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=50)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
OFFSETS = st.integers(min_value=-1439, max_value=1439).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
TIMES = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59)),
    OFFSETS,
)
FUZZ = settings(max_examples=150, deadline=None)


@FUZZ
@given(topic=TOPICS, payload=st.binary(max_size=600))
def test_any_bytes_are_a_reading_or_a_typed_refusal(topic: str, payload: bytes) -> None:
    _judged(topic, payload)


@FUZZ
@given(value=JSON_VALUES)
def test_any_json_is_a_reading_or_a_typed_refusal(value: Any) -> None:
    _judged(TOPIC, json.dumps(value).encode())


@FUZZ
@given(
    seq=NUMBERS | JSON_VALUES,
    time=TIMES | JSON_VALUES,
    celsius=NUMBERS | JSON_VALUES,
    humidity=NUMBERS | JSON_VALUES,
    signature=st.sampled_from(["", "AA==", "AAB="]) | JSON_VALUES,
)
def test_any_reading_fields_are_a_reading_or_a_typed_refusal(
    seq: Any, time: Any, celsius: Any, humidity: Any, signature: Any
) -> None:
    reading = {**READING, "seq": seq, "time": time, "temperature_c": celsius}
    reading["humidity_pct"] = humidity
    message = {"reading": reading, "signature": signature, "sensor_id": "fridge-1"}
    _judged(TOPIC, json.dumps(message).encode())
    if isinstance(signature, str):  # and signed for real, so the rest is judged too
        try:
            _judged(TOPIC, sign_reading(reading, KEY))
        except MedtraceError as exc:  # a value RFC 8785 cannot write: no signed message
            assert exc.rule == "input.not_canonical"
