"""Signed envelopes: what a station signs and what the ledger records.

A station signs the RFC 8785 (JCS) canonical bytes of an event object with Ed25519. The
envelope ``{"event": {...}, "signature": "<base64>", "station_id": "..."}``, canonicalised
with JCS again, is the ledger leaf. Anyone holding the leaf and the station's public key can
check the signature without trusting medtrace: that is why the signed bytes are canonical and
the event is kept exactly as the station sent it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.errors import InvalidInput, SignatureRejected
from medtrace.protocol.keys import b64, b64decode_canonical, verify_ed25519

#: The largest integer RFC 8785 writes exactly: its numbers are IEEE 754 doubles.
MAX_SAFE_INTEGER = 2**53 - 1
#: A station's id, as its envelopes name it.
STATION_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _written_alike(value: object) -> bool:
    """Whether Python's json module writes ``value`` exactly as RFC 8785 does.

    True for null, booleans, strings (both escape only ``"``, ``\\`` and the control
    characters, the same way), integers within RFC 8785's range and floats with a fraction
    that ``repr`` writes without an exponent (1e-4 <= |x| < 1e16): RFC 8785 writes a number
    as ECMAScript does, from the same shortest round-trip digits as ``repr``, and differs only
    for integral floats (``5`` against ``5.0``) and exponents (``1e-7`` against ``1e-07``).
    """
    if type(value) is float:
        return not value.is_integer() and 1e-4 <= abs(value) < 1e16
    if type(value) is int:
        return abs(value) <= MAX_SAFE_INTEGER
    return value is None or type(value) in (bool, str)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value; ``InvalidInput`` for values JSON cannot carry exactly.

    Capture canonicalises every event and every reading it receives, and the pure-Python
    RFC 8785 library was a large part of that. For a string, a number or a flat object with
    ASCII member names and values the json module writes alike (``_written_alike``), as a
    custody event or a reading is, the json module's C encoder writes the same bytes in a
    tenth of the time; anything else (nested, non-ASCII names, exponents) goes through the
    library, which also refuses what JSON cannot carry exactly.
    """
    flat = value.items() if isinstance(value, dict) else [("", value)]
    if all(type(k) is str and k.isascii() and _written_alike(v) for k, v in flat):
        try:
            return _COMPACT_JSON.encode(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8, the library refuses it too
            pass
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


@dataclass(frozen=True)
class CanonicalEnvelope:
    """An envelope whose event is canonicalised once: the signature check, the event id and
    the leaf all need the same bytes, and canonicalising is the costliest step of capture
    after the signature itself."""

    event_bytes: bytes
    signature: str
    station_id: str

    @classmethod
    def of(cls, envelope: Mapping[str, Any]) -> CanonicalEnvelope:
        """Canonicalise ``envelope["event"]``; ``InvalidInput`` if JSON cannot carry it."""
        return cls(canonical_json(envelope["event"]), envelope["signature"], envelope["station_id"])

    @property
    def event_id(self) -> str:
        """SHA-256 of the event's canonical bytes, in hex (as ``event_id``)."""
        return hashlib.sha256(self.event_bytes).hexdigest()

    def leaf(self, *, captured_by: str | None = None) -> bytes:
        """The RFC 8785 bytes of ``{"event", "signature", "station_id"}``: JCS sorts the
        members by name (event < signature < station_id) and writes each value in its own
        canonical form, so the leaf is exactly this concatenation.

        ``captured_by`` is the GLN of the station's participant when it captured for a
        principal at the principal's GLN (the event's ``gln``) under a grant: the leaf then
        names both, with ``captured_by`` first (it sorts before ``event``)."""
        opening = b"{"
        if captured_by is not None:
            opening = b'{"captured_by":%s,' % canonical_json(captured_by)
        return b"".join(
            (
                opening,
                b'"event":',
                self.event_bytes,
                b',"signature":',
                canonical_json(self.signature),
                b',"station_id":',
                canonical_json(self.station_id),
                b"}",
            )
        )

    def verify(self, public_key_raw: bytes) -> None:
        """Check the station's signature over the event, or raise ``SignatureRejected``."""
        try:
            verify_ed25519(public_key_raw, b64decode_canonical(self.signature), self.event_bytes)
        except ValueError as exc:  # binascii.Error is a ValueError
            raise SignatureRejected(
                f"the signature of station {self.station_id!r} does not verify over the event",
                rule="signature.invalid",
            ) from exc


def leaf_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The ledger leaf of an envelope: its canonical bytes, exactly three members."""
    return CanonicalEnvelope.of(envelope).leaf()


def verify_envelope(envelope: Mapping[str, Any], public_key_raw: bytes) -> None:
    """Check the station's signature over the event; raise ``SignatureRejected`` if it fails."""
    CanonicalEnvelope.of(envelope).verify(public_key_raw)
