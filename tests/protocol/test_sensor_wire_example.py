"""The worked example a sensor vendor follows in docs/sensors.md is true: its public key,
canonical bytes, signature and payload are what medtrace computes and accepts."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.protocol.envelope import canonical_json
from medtrace.protocol.keys import b64
from medtrace.protocol.readings import parse_message, reading_topic, sign_reading, verify_reading

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sensors.md").read_text()
# RFC 8032 §7.1, TEST 1: the documented example's (published, never production) key.
KEY = Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
READING = {
    "sensor_id": "fridge-7",
    "seq": 42,
    "time": "2026-12-07T09:30:00.000Z",
    "temperature_c": 5.25,
    "humidity_pct": 61,
}


def documented(text: str | bytes) -> bool:
    return (text.decode() if isinstance(text, bytes) else text) in DOC


def test_the_documented_key_canonical_bytes_signature_and_payload_are_medtraces() -> None:
    pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    canonical = canonical_json(READING)
    payload = sign_reading(READING, KEY)
    assert documented(pem.decode().strip())
    assert documented(f"public key, registered with medtrace, is `{b64(public)}`")
    assert documented(f"printf '%s' '{canonical.decode()}' > reading.json")
    assert documented(f"# {b64(KEY.sign(canonical))}")
    assert documented(f"-t {reading_topic('fridge-7')} -m '{payload.decode()}'")
    parsed = parse_message(reading_topic("fridge-7"), payload)
    verify_reading(parsed, public)
    assert parsed.leaf == payload
