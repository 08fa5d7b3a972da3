"""Independent checker for medtrace unit verify documents, written from the standards only.

This module deliberately imports nothing from ``medtrace``: it re-derives every check from

* RFC 9162 §2.1.1 (Merkle tree hashing: leaf hash = SHA-256(0x00 || leaf),
  node hash = SHA-256(0x01 || left || right)) and §2.1.3.2 (verifying an inclusion proof),
* C2SP signed-note (https://c2sp.org/signed-note): note text, the blank line, signature
  lines ``"— <name> <base64(key id || signature)>"``, Ed25519 key IDs
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` and verifier keys
  ``<name>+<hex key id>+<base64(0x01 || public key)>``,
* C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): origin, decimal tree size and
  base64 root hash lines, optional extension lines,
* RFC 8785 (JSON Canonicalization Scheme, through the ``rfc8785`` package),
* RFC 8032 Ed25519 (through ``cryptography``).

Library use::

    results = check_verify_document(doc, log_public_key, log_key_name, station_key)
    results = check_url("http://127.0.0.1:8000/01/09506000134352/10/LOT1/21/SER1")

Every event gets one :class:`EventCheck` with status ``"ok"``, ``"pending"`` (validly
signed but not yet covered by the checkpoint; not a failure), ``"unsigned"`` (in the log, but
captured on a participant's API token through EPCIS or FHIR: there is no station signature to
check; not a failure, and shown as such) or ``"failed"``. So does every version of the unit's
lot record (``kind="lot_record"``): signed by a station, about the unit's GTIN and lot, in the
log, and each document it names downloaded and hashed (SHA-256 and size as signed). A unit
that a rule quarantined carries the alert's leaf (``quarantine``): it is checked too
(canonical ``{"alert": {...}}``, same rule, inclusion) and reported as one more result with
the event ID ``alert``.

Problems that concern the whole document are raised, never turned into per-event results,
so that a bad checkpoint cannot look like "all events fine" when a document has no events:

* :class:`CheckpointInvalid` - the checkpoint note is malformed, carries no valid signature
  by the log key, or its origin is not the log key name;
* :class:`DocumentInvalid` - the document itself is malformed or describes another unit
  than the URL asked for;
* :class:`LogKeyInvalid` - the log's published key is inconsistent with its verifier key.

CLI::

    python tools/independent_checker.py [--vkey VKEY] URL

prints one line per event (``OK``, ``PENDING (...)`` or ``FAILED: ...``) and a summary on
stderr. Exit status: 0 when no event failed (pending events are reported but are not
failures), 1 when an event, the checkpoint or the document failed, 2 on usage or HTTP
errors. ``--vkey`` supplies the log's C2SP verifier key out of band; without it the key is
fetched from ``{base}/api/v1/ledger/public-key``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "CheckerError",
    "CheckpointInvalid",
    "DocumentInvalid",
    "EventCheck",
    "HttpKeySource",
    "LogKeyInvalid",
    "StationKeyUnavailable",
    "Status",
    "check_event",
    "check_lot_record",
    "check_quarantine",
    "check_url",
    "check_verify_document",
    "key_id",
    "leaf_hash",
    "main",
    "node_hash",
    "parse_canonical_leaf",
    "parse_verify_url",
    "parse_vkey",
    "verify_checkpoint",
    "verify_inclusion",
]

Status = Literal["ok", "pending", "unsigned", "failed"]
#: Every public key a station published (it keeps each key it had, newest first).
StationKeyFn = Callable[[str], Sequence[bytes]]
DocumentFn = Callable[[str], bytes]  # a lot document's bytes by its SHA-256 (hex)

SIG_LINE_PREFIX = "\u2014 "  # C2SP signed-note: em dash U+2014 followed by a space
ED25519_SIG_TYPE = b"\x01"  # C2SP signed-note: signature type byte for Ed25519
HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1
ENVELOPE_KEYS = frozenset({"event", "signature", "station_id"})
TOKEN_SOURCES = ("epcis", "fhir")  # the standard the participant sent the event in
LOT_RECORD_REQUIRED = ("gtin", "lot", "version", "documents")
DOCUMENT_FIELDS = ("kind", "filename", "sha256", "size")
ALERT_LEAF_KEYS = frozenset({"alert"})
SIGNED_EVENT_REQUIRED = ("type", "event_time", "gln", "station_id")
READABLE_REQUIRED = ("type", "event_time", "gln", "station_id")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX_HASH_RE = re.compile(r"[0-9a-fA-F]{64}")
_GTIN_RE = re.compile(r"[0-9]{8}|[0-9]{12,14}")


# --------------------------------------------------------------------------- errors


class CheckerError(Exception):
    """Base class of the document-level failures this checker raises."""


class CheckpointInvalid(CheckerError):
    """The C2SP checkpoint note is malformed or not validly signed by the log key."""


class DocumentInvalid(CheckerError):
    """The verify document is malformed or does not describe the requested unit."""


class LogKeyInvalid(CheckerError):
    """The log's published key, key name and C2SP verifier key disagree."""


class StationKeyUnavailable(LookupError):
    """A station's public key could not be obtained."""


class _EventFailure(Exception):
    """Internal: one event failed one check; the message is the reported reason."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EventCheck:
    """Outcome of checking one event, or one version of the lot record, of a verify document.

    ``leaf_index`` is -1 and ``event_id`` is "" when the document did not supply them
    in a usable form. ``reason`` is "" for an ``"ok"`` event; for an ``"ok"`` lot record it
    says which documents were downloaded and matched.
    """

    leaf_index: int
    event_id: str
    status: Status
    reason: str
    kind: Literal["event", "lot_record"] = "event"


@dataclass(frozen=True)
class Checkpoint:
    """The parsed body of a C2SP tlog-checkpoint whose signature has been verified."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class _UnitIdentity:
    """The GTIN and serial number of the unit a verify document is about, and the SSCCs of
    the cases and pallets it was packed into (events naming those moved it too)."""

    gtin: str
    serial: str
    containers: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- encodings


def _b64decode_strict(text: str, what: str) -> bytes:
    """Decode standard base64 (RFC 4648 §4, as C2SP specifies), rejecting non-canonical text."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError(f"{what} is not canonical base64")
    return raw


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Verify an RFC 8032 Ed25519 signature; False for a bad key, signature or message."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- RFC 9162 hashing


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a leaf is SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of an interior node is SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(
    leaf_hash_value: bytes,
    leaf_index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root: bytes,
) -> bool:
    """Verify an inclusion proof following RFC 9162 §2.1.3.2 step by step.

    1. ``leaf_index`` must be below ``tree_size``.
    2. fn = leaf_index, sn = tree_size - 1.
    3. r = the leaf hash.
    4. For each p in the proof: if sn is 0, fail. If LSB(fn) is set or fn == sn, then
       r = HASH(0x01 || p || r) and, if LSB(fn) is not set, right-shift fn and sn until
       LSB(fn) is set or fn is 0; otherwise r = HASH(0x01 || r || p). Then right-shift
       fn and sn once.
    5. The proof verifies iff sn is 0 and r equals the root hash.
    """
    if not 0 <= leaf_index < tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash_value
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


# --------------------------------------------------------------------------- C2SP signed note


def key_id(key_name: str, public_key: bytes) -> bytes:
    """C2SP signed-note: Ed25519 key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    material = key_name.encode("utf-8") + b"\n" + ED25519_SIG_TYPE + public_key
    return hashlib.sha256(material).digest()[:4]


def _check_key_name(name: str) -> None:
    """C2SP signed-note: a key name is non-empty and has no Unicode spaces and no '+'."""
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise ValueError(f"invalid key name {name!r}")


def parse_vkey(vkey: str) -> tuple[str, bytes]:
    """Parse a C2SP verifier key ``<name>+<hex key id>+<base64(0x01 || key)>``.

    Returns ``(name, raw 32-byte Ed25519 public key)``; raises ``ValueError`` if the
    encoding is malformed, the type is not Ed25519 or the key ID does not match.
    """
    parts = vkey.strip().split("+", 2)  # the name has no "+", base64 may
    if len(parts) != 3:
        raise ValueError("verifier key must have three '+'-separated fields")
    name, hex_id, b64_key = parts
    _check_key_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise ValueError("verifier key ID must be 8 lowercase hex digits")
    typed_key = _b64decode_strict(b64_key, "verifier key")
    if len(typed_key) != 33 or typed_key[:1] != ED25519_SIG_TYPE:
        raise ValueError("verifier key is not an Ed25519 (type 0x01) 32-byte key")
    public_key = typed_key[1:]
    if key_id(name, public_key).hex() != hex_id:
        raise ValueError("verifier key ID does not match its name and key")
    return name, public_key


def _split_note(note: str) -> tuple[str, list[str]]:
    """C2SP signed-note: text is everything up to and including the newline before the
    last blank line; the rest is newline-terminated signature lines."""
    cut = note.rfind("\n\n")
    if cut < 0:
        raise CheckpointInvalid("checkpoint note has no blank line before its signatures")
    text, signatures = note[: cut + 1], note[cut + 2 :]
    if not signatures.endswith("\n"):
        raise CheckpointInvalid("checkpoint signature block does not end with a newline")
    return text, signatures[:-1].split("\n")


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    """C2SP signed-note: ``"— " name " " base64(key id || signature)``."""
    if not line.startswith(SIG_LINE_PREFIX):
        raise CheckpointInvalid(f"malformed checkpoint signature line {line!r}")
    fields = line[len(SIG_LINE_PREFIX) :].split(" ")
    if len(fields) != 2 or not fields[0]:
        raise CheckpointInvalid(f"malformed checkpoint signature line {line!r}")
    try:
        blob = _b64decode_strict(fields[1], "checkpoint signature")
    except ValueError as exc:
        raise CheckpointInvalid(str(exc)) from exc
    if len(blob) < 5:
        raise CheckpointInvalid("checkpoint signature is too short")
    return fields[0], blob


def _verify_note(note: str, public_key: bytes, key_name: str) -> str:
    """Verify a C2SP signed note against one Ed25519 key and return the signed text.

    Lines from other keys (other name or key ID) are ignored, as the spec requires; at
    least one line must come from the log key and every such line must verify.
    """
    text, lines = _split_note(note)
    expected_id = key_id(key_name, public_key)
    matching = 0
    for name, blob in map(_parse_signature_line, lines):
        if name != key_name or blob[:4] != expected_id:
            continue
        if not _ed25519_verify(public_key, blob[4:], text.encode("utf-8")):
            raise CheckpointInvalid("checkpoint signature by the log key does not verify")
        matching += 1
    if matching == 0:
        raise CheckpointInvalid(f"checkpoint carries no signature by log key {key_name!r}")
    return text


def _parse_checkpoint_body(text: str) -> Checkpoint:
    """C2SP tlog-checkpoint: ``origin``, decimal ``size`` (no leading zeros) and base64
    ``root hash`` lines, then optional non-empty extension lines."""
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointInvalid("checkpoint body needs three or more non-empty lines")
    origin, size_text, root_text = lines[:3]
    if not _SIZE_RE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointInvalid(f"checkpoint tree size {size_text!r} is not a decimal uint64")
    try:
        root = _b64decode_strict(root_text, "checkpoint root hash")
    except ValueError as exc:
        raise CheckpointInvalid(str(exc)) from exc
    if len(root) != HASH_SIZE:
        raise CheckpointInvalid("checkpoint root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:]))


def verify_checkpoint(note: str, log_public_key: bytes, log_key_name: str) -> Checkpoint:
    """Verify a C2SP tlog-checkpoint signed note and return its parsed body.

    Raises :class:`CheckpointInvalid` on any malformation, a missing or bad signature by
    the log key, or an origin that differs from the log key name.
    """
    body = _parse_checkpoint_body(_verify_note(note, log_public_key, log_key_name))
    if body.origin != log_key_name:
        raise CheckpointInvalid(
            f"checkpoint origin {body.origin!r} is not the log key name {log_key_name!r}"
        )
    return body


# --------------------------------------------------------------------------- leaves


def _reject_constant(name: str) -> Any:
    """json.loads hook: NaN and Infinity are not JSON (RFC 8259 §6)."""
    raise ValueError(f"{name} is not valid JSON")


def parse_canonical_leaf(leaf: bytes) -> dict[str, Any]:
    """Parse leaf bytes that must be exactly the RFC 8785 canonical form of a JSON object.

    Raises ``ValueError`` naming the problem otherwise.
    """
    try:
        value = json.loads(leaf.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ValueError("leaf is not valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"leaf is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise ValueError("leaf is not a JSON object")
    try:
        canonical = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"leaf cannot be canonicalized: {exc}") from exc
    if canonical != leaf:
        raise ValueError("leaf is not in RFC 8785 canonical form")
    return value


# --------------------------------------------------------------------------- per-event checks


def _event_position(event: Mapping[str, Any]) -> tuple[int, str]:
    """The leaf index and event ID to report, with -1 / "" when unusable."""
    index = event.get("leaf_index")
    event_id = event.get("event_id")
    usable_index = index if type(index) is int and index >= 0 else -1
    return usable_index, event_id if isinstance(event_id, str) else ""


def _decode_leaf(event: Mapping[str, Any]) -> bytes:
    """Decode the event's base64 leaf bytes."""
    leaf = event.get("leaf")
    if not isinstance(leaf, str):
        raise _EventFailure("event has no base64 'leaf'")
    try:
        return _b64decode_strict(leaf, "leaf")
    except ValueError as exc:
        raise _EventFailure(str(exc)) from exc


def _parse_leaf(leaf: bytes) -> dict[str, Any]:
    """Parse the leaf as RFC 8785 canonical JSON, as a per-event failure."""
    try:
        return parse_canonical_leaf(leaf)
    except ValueError as exc:
        raise _EventFailure(str(exc)) from exc


def _signed_event(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Check the envelope shape and return its signed "event" object."""
    if set(envelope) - {"captured_by"} != ENVELOPE_KEYS:
        raise _EventFailure(
            f"envelope keys are {sorted(envelope)}, expected {sorted(ENVELOPE_KEYS)} "
            "(and captured_by, under a capture grant)"
        )
    if "captured_by" in envelope and not isinstance(envelope["captured_by"], str):
        raise _EventFailure("envelope 'captured_by' is not a GLN string")
    signed = envelope["event"]
    if not isinstance(signed, dict):
        raise _EventFailure("envelope 'event' is not a JSON object")
    for field in SIGNED_EVENT_REQUIRED:
        if not isinstance(signed.get(field), str):
            raise _EventFailure(f"signed event lacks string field {field!r}")
    return signed


def _check_station_ids(
    envelope: Mapping[str, Any], signed: Mapping[str, Any], readable: Mapping[str, Any]
) -> None:
    """The envelope, signed event and readable event must name the same station."""
    ids = (envelope.get("station_id"), signed.get("station_id"), readable.get("station_id"))
    if not isinstance(ids[0], str) or not ids[0] == ids[1] == ids[2]:
        raise _EventFailure(f"station_id differs (envelope, signed event, readable) = {ids!r}")


def _same_json(a: Any, b: Any) -> bool:
    """Type-exact JSON equality, by comparing RFC 8785 canonical forms."""
    try:
        return rfc8785.dumps(a) == rfc8785.dumps(b)
    except rfc8785.CanonicalizationError:
        return False


def _check_readable(readable: Mapping[str, Any], signed: Mapping[str, Any]) -> None:
    """Fields shown to readers must equal the signed event's (absent == null for
    destination_gln); any other field present in both must be equal too."""
    for field in READABLE_REQUIRED:
        if field not in readable:
            raise _EventFailure(f"readable event lacks {field!r}")
    if "destination_gln" in readable and not _same_json(
        readable["destination_gln"], signed.get("destination_gln")
    ):
        raise _EventFailure("readable 'destination_gln' differs from the signed event")
    for field in sorted(readable.keys() & signed.keys()):
        if not _same_json(readable[field], signed[field]):
            raise _EventFailure(f"readable {field!r} differs from the signed event")


def _check_unit(signed: Mapping[str, Any], unit: _UnitIdentity) -> None:
    """The signed event must be about the document's unit (same GTIN and serial), or name a
    container (SSCC) that a pack event of the document put the unit into."""
    if "gtin" not in signed and signed.get("sscc") in unit.containers:
        return
    if signed.get("gtin") != unit.gtin or signed.get("serial") != unit.serial:
        raise _EventFailure(
            f"signed event is for gtin={signed.get('gtin')!r} serial={signed.get('serial')!r}, "
            f"not the unit gtin={unit.gtin!r} serial={unit.serial!r}"
        )


def _check_station_signature(
    envelope: Mapping[str, Any], signed: Mapping[str, Any], station_key: StationKeyFn
) -> None:
    """Ed25519 signature of the station over the RFC 8785 bytes of the signed event."""
    station_id = signed["station_id"]
    try:
        public_keys = station_key(station_id)
    except (LookupError, ValueError) as exc:
        raise _EventFailure(f"no public key for station {station_id!r}: {exc}") from exc
    sig_text = envelope.get("signature")
    try:
        signature = (
            _b64decode_strict(sig_text, "station signature") if isinstance(sig_text, str) else b""
        )
    except ValueError as exc:
        raise _EventFailure(str(exc)) from exc
    message = rfc8785.dumps(signed)
    if not any(_ed25519_verify(key, signature, message) for key in public_keys):
        raise _EventFailure(f"station {station_id!r} signature over the event does not verify")


def _proof_hashes(proof: Any) -> list[bytes]:
    """Decode an inclusion proof given as a list of 64-hex-digit SHA-256 hashes."""
    well_formed = isinstance(proof, list) and all(
        isinstance(h, str) and _HEX_HASH_RE.fullmatch(h) for h in proof
    )
    if not well_formed:
        raise _EventFailure("inclusion_proof is not a list of 32-byte hex hashes")
    return [bytes.fromhex(h) for h in proof]


def _check_inclusion(
    event: Mapping[str, Any], leaf: bytes, checkpoint: Checkpoint
) -> tuple[Status, str]:
    """RFC 9162 §2.1.3.2 inclusion under the checkpoint, or "pending" past its size."""
    index = event.get("leaf_index")
    if type(index) is not int or index < 0:
        raise _EventFailure("leaf_index is not a non-negative integer")
    proof = event.get("inclusion_proof")
    if index >= checkpoint.size:
        if proof is not None:
            raise _EventFailure(
                f"leaf {index} is beyond checkpoint size {checkpoint.size} but has a proof"
            )
        return (
            "pending",
            f"not yet integrated: leaf_index {index} >= checkpoint size {checkpoint.size}",
        )
    if proof is None:
        raise _EventFailure(
            f"leaf {index} is within checkpoint size {checkpoint.size} but has no proof"
        )
    if not verify_inclusion(
        leaf_hash(leaf), index, checkpoint.size, _proof_hashes(proof), checkpoint.root
    ):
        raise _EventFailure(
            f"inclusion proof for leaf {index} does not verify against the checkpoint root"
        )
    return "ok", ""


def _check_event_or_raise(
    event: Mapping[str, Any], checkpoint: Checkpoint, unit: _UnitIdentity, station_key: StationKeyFn
) -> tuple[Status, str]:
    """Run every check on one event, raising :class:`_EventFailure` at the first failure."""
    leaf = _decode_leaf(event)
    envelope = _parse_leaf(leaf)
    if any(set(envelope) == {source, "event", "participant"} for source in TOKEN_SOURCES):
        return _check_token_leaf(event, envelope, checkpoint, unit, leaf)
    signed = _signed_event(envelope)
    _check_station_ids(envelope, signed, event)
    _check_readable(event, signed)
    _check_unit(signed, unit)
    _check_station_signature(envelope, signed, station_key)
    return _check_inclusion(event, leaf, checkpoint)


def _check_token_leaf(
    event: Mapping[str, Any],
    envelope: Mapping[str, Any],
    checkpoint: Checkpoint,
    unit: _UnitIdentity,
    leaf: bytes,
) -> tuple[Status, str]:
    """A leaf captured on a participant's API token: nothing is signed, so the readable
    fields, the unit and the inclusion are checked and the result says who vouched for it."""
    recorded, participant = envelope["event"], envelope["participant"]
    if not isinstance(recorded, dict) or not isinstance(participant, str):
        raise _EventFailure("token leaf: 'event' must be an object and 'participant' a GLN")
    if event.get("station_id") is not None or "station_id" in recorded:
        raise _EventFailure("a token leaf names no station")
    _check_readable(event, recorded)
    _check_unit(recorded, unit)
    status, reason = _check_inclusion(event, leaf, checkpoint)
    if status == "ok":
        return "unsigned", f"no station signature: recorded on participant {participant}'s token"
    return status, reason


def check_event(
    event: Mapping[str, Any],
    checkpoint: Checkpoint,
    unit_gtin: str,
    unit_serial: str,
    station_key: StationKeyFn,
    unit_containers: frozenset[str] = frozenset(),
) -> EventCheck:
    """Check one readable event of a verify document against a verified checkpoint.

    Checks: canonical RFC 8785 leaf, envelope shape, station IDs, readable fields vs the
    signed event, unit GTIN/serial, the station's Ed25519 signature and the RFC 9162
    inclusion proof (or "pending" when the leaf is beyond the checkpoint size).
    """
    if not isinstance(event, Mapping):
        return EventCheck(-1, "", "failed", "event is not a JSON object")
    index, event_id = _event_position(event)
    try:
        unit = _UnitIdentity(unit_gtin, unit_serial, unit_containers)
        status, reason = _check_event_or_raise(event, checkpoint, unit, station_key)
    except _EventFailure as exc:
        return EventCheck(index, event_id, "failed", str(exc))
    return EventCheck(index, event_id, status, reason)


def _readable_documents(record: Mapping[str, Any], signed: Mapping[str, Any]) -> list[Any]:
    """The signed document list, once the readable one is shown to be the same."""
    documents = signed["documents"]
    readable = record.get("documents")
    if not isinstance(readable, list) or len(readable) != len(documents):
        raise _EventFailure("readable 'documents' differ from the signed record")
    for shown, named in zip(readable, documents, strict=True):
        if not isinstance(shown, dict) or not isinstance(named, dict):
            raise _EventFailure("a document is not a JSON object")
        if any(not _same_json(shown.get(f), named.get(f)) for f in DOCUMENT_FIELDS):
            raise _EventFailure(f"readable document {shown.get('filename')!r} differs")
        if not isinstance(named["sha256"], str) or not _HEX_HASH_RE.fullmatch(named["sha256"]):
            raise _EventFailure("a signed document hash is not 64 hex digits")
        url = shown.get("url")
        if not isinstance(url, str) or not url.endswith(f"/api/v1/documents/{named['sha256']}"):
            raise _EventFailure(f"document {named['filename']!r} links to {url!r}")
    return documents


def _check_documents(documents: Sequence[Mapping[str, Any]], fetch: DocumentFn | None) -> str:
    """Download each document and compare its SHA-256 and size with the signed record."""
    if fetch is None:
        return f"{len(documents)} documents named, not downloaded"
    for named in documents:
        try:
            data = fetch(named["sha256"])
        except (LookupError, OSError, httpx.HTTPError) as exc:
            message = f"document {named['filename']!r} cannot be downloaded: {exc}"
            raise _EventFailure(message) from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != named["sha256"] or len(data) != named["size"]:
            raise _EventFailure(
                f"document {named['filename']!r} downloaded has SHA-256 {digest} "
                f"({len(data)} bytes); the signed record says {named['sha256']} "
                f"({named['size']} bytes)"
            )
    return f"{len(documents)} documents match: " + ", ".join(d["filename"] for d in documents)


def check_lot_record(
    record: Mapping[str, Any],
    checkpoint: Checkpoint,
    unit_gtin: str,
    unit_lot: str,
    station_key: StationKeyFn,
    fetch_document: DocumentFn | None = None,
) -> EventCheck:
    """Check one version of a unit's lot record: a station-signed ``lot_record`` leaf about
    the unit's GTIN and lot, its readable fields and documents as signed, its RFC 9162
    inclusion, then each document downloaded (``fetch_document(sha256)``) and hashed."""
    if not isinstance(record, Mapping):
        return EventCheck(-1, "", "failed", "lot record is not a JSON object", "lot_record")
    index, event_id = _event_position(record)
    try:
        leaf = _decode_leaf(record)
        envelope = _parse_leaf(leaf)
        signed = _signed_event(envelope)
        if signed.get("type") != "lot_record" or not all(k in signed for k in LOT_RECORD_REQUIRED):
            raise _EventFailure("the leaf is not a lot_record")
        if (signed["gtin"], signed["lot"]) != (unit_gtin, unit_lot):
            raise _EventFailure(
                f"the record is about {signed['gtin']} lot {signed['lot']}, not the unit's "
                f"{unit_gtin} lot {unit_lot}"
            )
        _check_station_ids(envelope, signed, record)
        for field in ("version", "event_time", "gln"):
            if not _same_json(record.get(field), signed[field]):
                raise _EventFailure(f"readable {field!r} differs from the signed record")
        documents = _readable_documents(record, signed)
        _check_station_signature(envelope, signed, station_key)
        status, reason = _check_inclusion(record, leaf, checkpoint)
        checked = _check_documents(documents, fetch_document)
    except _EventFailure as exc:
        return EventCheck(index, event_id, "failed", str(exc), "lot_record")
    return EventCheck(index, event_id, status, reason or checked, "lot_record")


def check_quarantine(quarantine: Any, checkpoint: Checkpoint) -> EventCheck:
    """Check the alert that quarantined the unit: its leaf is canonical JSON of
    ``{"alert": {...}}`` naming the same rule, and its inclusion proof leads to the root.
    Reported like an event, with the event ID ``alert``."""
    if not isinstance(quarantine, Mapping):
        return EventCheck(-1, "alert", "failed", "quarantine is not a JSON object")
    index, _ = _event_position(quarantine)
    try:
        leaf = _decode_leaf(quarantine)
        recorded = _parse_leaf(leaf)
        if set(recorded) != ALERT_LEAF_KEYS or not isinstance(recorded["alert"], dict):
            raise _EventFailure("an alert leaf is exactly {'alert': {...}}")
        if recorded["alert"].get("rule") != quarantine.get("rule"):
            raise _EventFailure("the quarantine's rule is not the one its alert leaf records")
        status, reason = _check_inclusion(quarantine, leaf, checkpoint)
    except _EventFailure as exc:
        return EventCheck(index, "alert", "failed", str(exc))
    return EventCheck(index, "alert", status, reason)


def _flag_duplicates(results: list[EventCheck]) -> list[EventCheck]:
    """A leaf index may appear only once in a document; later repeats fail."""
    seen: set[int] = set()
    flagged: list[EventCheck] = []
    for result in results:
        if result.leaf_index >= 0 and result.leaf_index in seen:
            reason = "duplicate leaf_index in document"
            result = EventCheck(result.leaf_index, result.event_id, "failed", reason)
        seen.add(result.leaf_index)
        flagged.append(result)
    return flagged


def _unit_identity(doc: Mapping[str, Any]) -> _UnitIdentity:
    """The unit's GTIN and serial from the document, or :class:`DocumentInvalid`."""
    unit = doc.get("unit")
    if not isinstance(unit, dict) or not all(
        isinstance(unit.get(k), str) for k in ("gtin", "serial")
    ):
        raise DocumentInvalid("document has no unit with string 'gtin' and 'serial'")
    return _UnitIdentity(unit["gtin"], unit["serial"])


def check_verify_document(
    doc: dict[str, Any],
    log_public_key: bytes,
    log_key_name: str,
    station_key: StationKeyFn,
    fetch_document: DocumentFn | None = None,
) -> list[EventCheck]:
    """Check a unit verify document: its checkpoint, then every event.

    Raises :class:`CheckpointInvalid` when the C2SP checkpoint is not validly signed by the
    log key (``log_key_name``/``log_public_key``) and :class:`DocumentInvalid` when the
    document lacks ``unit`` or ``events``. Otherwise returns one :class:`EventCheck` per
    event, in document order, then one per version of the lot record (``lot_records``, when
    present). ``station_key`` maps a station ID to its raw 32-byte Ed25519 key and may raise
    ``LookupError``/``ValueError`` (reported as that event's failure); ``fetch_document``
    gives a lot document's bytes by SHA-256 (without it, documents are not downloaded).
    """
    note = doc.get("checkpoint")
    if not isinstance(note, str):
        raise CheckpointInvalid("document has no checkpoint note")
    checkpoint = verify_checkpoint(note, log_public_key, log_key_name)
    unit = _unit_identity(doc)
    events = doc.get("events")
    if not isinstance(events, list):
        raise DocumentInvalid("document has no 'events' list")
    containers = _containers_of(events, unit)
    results = [
        check_event(e, checkpoint, unit.gtin, unit.serial, station_key, containers) for e in events
    ]
    records = doc.get("lot_records", [])
    if not isinstance(records, list):
        raise DocumentInvalid("'lot_records' is not a list")
    lot = doc["unit"].get("lot")
    results += [
        check_lot_record(r, checkpoint, unit.gtin, str(lot), station_key, fetch_document)
        for r in records
    ]
    if doc.get("quarantine") is not None:
        results.append(check_quarantine(doc["quarantine"], checkpoint))
    return _flag_duplicates(results)


def _containers_of(events: list[Any], unit: _UnitIdentity) -> frozenset[str]:
    """The SSCCs the unit was packed into, directly or inside another container, read from
    the document's pack events in order (each of those events is then checked like any)."""
    found: set[str] = set()
    for event in events:
        try:
            signed = _parse_leaf(_decode_leaf(event)).get("event")
        except _EventFailure:
            continue
        if not isinstance(signed, dict):
            continue
        children = signed.get("children")
        if signed.get("type") != "pack" or not isinstance(children, list):
            continue
        for child in children:
            if child == {"gtin": unit.gtin, "serial": unit.serial} or (
                isinstance(child, dict) and child.get("sscc") in found
            ):
                found.add(str(signed.get("sscc")))
    return frozenset(found)


# --------------------------------------------------------------------------- HTTP


def parse_verify_url(url: str) -> tuple[str, dict[str, str]]:
    """Split a GS1 Digital Link verify URL into the service base URL and its AI values.

    ``http://h:8000/01/09506000134352/10/LOT1/21/SER1`` gives
    ``("http://h:8000", {"01": "09506000134352", "10": "LOT1", "21": "SER1"})``. A relative
    URL gives a relative base (for a client with ``base_url``).
    """
    parts = urlsplit(url)
    segments = parts.path.split("/")
    for i in range(len(segments) - 1):
        if segments[i] == "01" and _GTIN_RE.fullmatch(segments[i + 1]):
            pairs = segments[i:]
            if len(pairs) % 2:
                raise CheckerError(f"odd number of path segments after /01/ in {url!r}")
            ais = {pairs[j]: unquote(pairs[j + 1]) for j in range(0, len(pairs), 2)}
            base = urlunsplit((parts.scheme, parts.netloc, "/".join(segments[:i]), "", ""))
            return base, ais
    raise CheckerError(f"{url!r} is not a GS1 Digital Link URL with /01/<gtin>")


def _check_unit_matches_url(doc: Mapping[str, Any], ais: Mapping[str, str]) -> None:
    """The document must describe the unit the URL names (GTIN padded to 14 digits)."""
    unit = doc.get("unit")
    if not isinstance(unit, dict):
        raise DocumentInvalid("document has no unit")
    expected = {"gtin": ais["01"].zfill(14), "serial": ais.get("21"), "lot": ais.get("10")}
    for field, value in expected.items():
        if value is not None and unit.get(field) != value:
            raise DocumentInvalid(
                f"document unit {field}={unit.get(field)!r} but URL asks for {value!r}"
            )


def _log_key_from_json(body: Any) -> tuple[str, bytes]:
    """Validate the log key JSON: key_name, raw key and C2SP vkey must agree."""
    fields = ("key_name", "public_key", "vkey")
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in fields):
        raise LogKeyInvalid("log public-key response lacks key_name/public_key/vkey strings")
    try:
        raw = _b64decode_strict(body["public_key"], "log public key")
        name, vkey_key = parse_vkey(body["vkey"])
    except ValueError as exc:
        raise LogKeyInvalid(str(exc)) from exc
    if name != body["key_name"] or vkey_key != raw:
        raise LogKeyInvalid("log vkey does not match key_name/public_key")
    return name, raw


class HttpKeySource:
    """Fetches the log key and station keys from a medtrace base URL, caching station keys."""

    def __init__(self, client: httpx.Client, base: str) -> None:
        """Use ``client`` for requests to ``{base}/api/v1/...``."""
        self._client = client
        self._base = base.rstrip("/")
        self._stations: dict[str, list[bytes]] = {}

    def log_key(self) -> tuple[str, bytes]:
        """GET /api/v1/ledger/public-key and return ``(key name, raw Ed25519 key)``."""
        response = self._client.get(f"{self._base}/api/v1/ledger/public-key")
        response.raise_for_status()
        return _log_key_from_json(response.json())

    def station_key(self, station_id: str) -> list[bytes]:
        """GET /api/v1/stations/{id} once per station and return its raw Ed25519 keys (a
        rotated station lists its old keys, which signed its old events)."""
        if station_id not in self._stations:
            self._stations[station_id] = self._fetch_station(station_id)
        return self._stations[station_id]

    def document(self, sha256: str) -> bytes:
        """GET /api/v1/documents/{sha256}: a lot document, to hash."""
        response = self._client.get(f"{self._base}/api/v1/documents/{sha256}")
        response.raise_for_status()
        return response.content

    def _fetch_station(self, station_id: str) -> list[bytes]:
        """Fetch and decode one station's keys; :class:`StationKeyUnavailable` on failure."""
        try:
            response = self._client.get(
                f"{self._base}/api/v1/stations/{quote(station_id, safe='')}"
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise StationKeyUnavailable(f"cannot fetch station {station_id!r}: {exc}") from exc
        if not isinstance(body, dict) or body.get("station_id") != station_id:
            raise StationKeyUnavailable(f"station {station_id!r} response is malformed")
        keys = body.get("keys")
        if not isinstance(keys, list) or not all(
            isinstance(k, dict) and isinstance(k.get("public_key"), str) for k in keys
        ):
            raise StationKeyUnavailable(f"station {station_id!r} response is malformed")
        try:
            return [_b64decode_strict(k["public_key"], "station public key") for k in keys]
        except ValueError as exc:
            raise StationKeyUnavailable(str(exc)) from exc


def _fetch_document(client: httpx.Client, url: str) -> dict[str, Any]:
    """GET the verify URL as JSON."""
    response = client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    doc = response.json()
    if not isinstance(doc, dict):
        raise DocumentInvalid("verify response is not a JSON object")
    return doc


def _check_url_with(client: httpx.Client, url: str, vkey: str | None) -> list[EventCheck]:
    """check_url's body, with a client that is already open."""
    base, ais = parse_verify_url(url)
    keys = HttpKeySource(client, base)
    if vkey is None:
        name, public_key = keys.log_key()
    else:
        try:
            name, public_key = parse_vkey(vkey)
        except ValueError as exc:
            raise LogKeyInvalid(str(exc)) from exc
    doc = _fetch_document(client, url)
    _check_unit_matches_url(doc, ais)
    return check_verify_document(doc, public_key, name, keys.station_key, keys.document)


def check_url(
    url: str, client: httpx.Client | None = None, vkey: str | None = None
) -> list[EventCheck]:
    """Fetch a unit's verify document and the keys it needs over HTTP, then check it.

    ``vkey`` is the log's C2SP verifier key obtained out of band; when omitted it is fetched
    from ``{base}/api/v1/ledger/public-key``. Station keys are fetched once per station
    per call. Raises :class:`CheckerError` subclasses for document-level failures and
    ``httpx.HTTPError`` for transport or HTTP status errors.
    """
    if client is not None:
        return _check_url_with(client, url, vkey)
    with httpx.Client(timeout=10.0) as own_client:
        return _check_url_with(own_client, url, vkey)


# --------------------------------------------------------------------------- CLI


def _format(result: EventCheck) -> str:
    """One output line for an event."""
    label = f"leaf {result.leaf_index} event {result.event_id or '?'}"
    if result.kind == "lot_record":
        label = f"leaf {result.leaf_index} lot record {result.event_id or '?'}"
    if result.status == "ok":
        return f"{label}: OK ({result.reason})" if result.reason else f"{label}: OK"
    if result.status in ("pending", "unsigned"):
        return f"{label}: {result.status.upper()} ({result.reason})"
    return f"{label}: FAILED: {result.reason}"


def main(argv: Sequence[str] | None = None, client: httpx.Client | None = None) -> int:
    """CLI entry point; see the module docstring for output and exit status."""
    parser = argparse.ArgumentParser(description="Independently check a medtrace unit verify URL.")
    example = "http://127.0.0.1:8000/01/<gtin>/10/<lot>/21/<serial>"
    parser.add_argument("url", help=f"unit verify URL, e.g. {example}")
    parser.add_argument("--vkey", help="log C2SP verifier key, obtained out of band")
    args = parser.parse_args(argv)
    try:
        parse_verify_url(args.url)
    except CheckerError as exc:
        parser.error(str(exc))
    try:
        results = check_url(args.url, client=client, vkey=args.vkey)
    except CheckerError as exc:
        print(f"{type(exc).__name__}: FAILED: {exc}")
        return 1
    except httpx.HTTPError as exc:
        print(f"HTTP error: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(_format(result))
    statuses = ("ok", "pending", "unsigned", "failed")
    counts = {s: sum(r.status == s for r in results) for s in statuses}
    print(
        f"{counts['ok']} ok, {counts['pending']} pending, {counts['unsigned']} unsigned, "
        f"{counts['failed']} failed",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
