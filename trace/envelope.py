"""Signed envelopes: what a station signs and what the ledger records.

A station signs the RFC 8785 (JCS) canonical bytes of an event object with Ed25519. The
envelope ``{"event": {...}, "signature": "<base64>", "station_id": "..."}``, canonicalised
with JCS again, is the ledger leaf. Anyone holding the leaf and the station's public key can
check the signature without trusting medtrace: that is why the signed bytes are canonical and
the event is kept exactly as the station sent it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medtrace.errors import InvalidInput, SignatureRejected
from medtrace.keys import b64, b64decode_canonical


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value; ``InvalidInput`` for values JSON cannot carry exactly."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not canonicalisable JSON: {exc}", rule="input.not_canonical") from exc


def event_id(event: Mapping[str, Any]) -> str:
    """The event's id: SHA-256 of its canonical bytes, in hex. A retry has the same id."""
    return hashlib.sha256(canonical_json(event)).hexdigest()


def sign_event(
    event: Mapping[str, Any], *, station_id: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """Sign an event as ``station_id`` and return the envelope to send to capture."""
    signature = key.sign(canonical_json(event))
    return {"event": dict(event), "signature": b64(signature), "station_id": station_id}


def leaf_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The ledger leaf of an envelope: its canonical bytes, exactly three members."""
    return canonical_json(
        {
            "event": envelope["event"],
            "signature": envelope["signature"],
            "station_id": envelope["station_id"],
        }
    )


def verify_envelope(envelope: Mapping[str, Any], public_key_raw: bytes) -> None:
    """Check the station's signature over the event; raise ``SignatureRejected`` if it fails."""
    try:
        signature = b64decode_canonical(envelope["signature"])
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(
            signature, canonical_json(envelope["event"])
        )
    except (InvalidSignature, ValueError) as exc:  # binascii.Error is a ValueError
        raise SignatureRejected(
            f"the signature of station {envelope['station_id']!r} does not verify over the event",
            rule="signature.invalid",
        ) from exc
