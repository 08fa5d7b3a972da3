"""Tests of the independent checker itself, with no medtrace product code.

The tests build a tiny log by hand: Ed25519 keys from ``cryptography``, event envelopes
canonicalized with ``rfc8785``, a naive recursive RFC 9162 §2.1.1 Merkle tree hash and
§2.1.3.1 inclusion path, and a C2SP signed-note checkpoint signed line by line.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import independent_checker as ic

ORIGIN = "medtrace.test/log"
GTIN = "09506000134352"
SERIAL = "SER1"
LOT = "LOT1"
EXPIRY = "2027-01-31"
BASE = "http://medtrace.test"
VERIFY_URL = f"{BASE}/01/{GTIN}/10/{LOT}/21/{SERIAL}"
EVENT_TYPES = ("commission", "pack", "ship", "receive", "dispense", "decommission")


# --------------------------------------------------------------------------- naive log


def raw_public(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte Ed25519 public key."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def split_point(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash, computed recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = split_point(len(leaves))
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion path PATH(m, D[n]), computed recursively."""
    if len(leaves) == 1:
        return []
    k = split_point(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def note_key_id(name: str, key: Ed25519PrivateKey) -> bytes:
    """C2SP signed-note Ed25519 key ID, computed here independently of the checker."""
    return hashlib.sha256(name.encode() + b"\n\x01" + raw_public(key)).digest()[:4]


def signature_line(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """One C2SP signature line over ``text``."""
    blob = note_key_id(name, key) + key.sign(text.encode())
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """C2SP tlog-checkpoint body."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """A C2SP signed note with one signature."""
    return text + "\n" + signature_line(text, name, key)


def vkey_for(name: str, key: Ed25519PrivateKey) -> str:
    """C2SP verifier key text."""
    typed = base64.b64encode(b"\x01" + raw_public(key)).decode()
    return f"{name}+{note_key_id(name, key).hex()}+{typed}"


# --------------------------------------------------------------------------- test world


@dataclass
class World:
    """Keys of a test log and its stations."""

    log_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    stations: dict[str, Ed25519PrivateKey] = field(
        default_factory=lambda: {
            "ST-A": Ed25519PrivateKey.generate(),
            "ST-B": Ed25519PrivateKey.generate(),
        }
    )

    def station_key(self, station_id: str) -> bytes:
        """Raw station public key; KeyError for an unknown station."""
        return raw_public(self.stations[station_id])


def make_event(i: int) -> dict[str, Any]:
    """The i-th signed event for the test unit; "ship" events carry a destination GLN."""
    event: dict[str, Any] = {
        "type": EVENT_TYPES[i % len(EVENT_TYPES)],
        "gtin": GTIN,
        "serial": SERIAL,
        "lot": LOT,
        "expiry": EXPIRY,
        "event_time": f"2026-01-0{i + 1}T10:00:00Z",
        "gln": f"950600000000{i}",
        "station_id": "ST-A" if i % 2 == 0 else "ST-B",
    }
    if event["type"] == "ship":
        event["destination_gln"] = "9506000000999"
    return event


def envelope_of(event: dict[str, Any], signature: bytes) -> dict[str, Any]:
    """The leaf envelope around a signed event."""
    encoded = base64.b64encode(signature).decode()
    return {"event": event, "signature": encoded, "station_id": event["station_id"]}


def seal(world: World, event: dict[str, Any]) -> bytes:
    """RFC 8785 leaf bytes of the envelope signed by the event's station."""
    signature = world.stations[event["station_id"]].sign(rfc8785.dumps(event))
    return rfc8785.dumps(envelope_of(event, signature))


def readable(
    event: dict[str, Any], leaf: bytes, index: int, proof: list[bytes] | None
) -> dict[str, Any]:
    """The readable event entry of a verify document."""
    return {
        "leaf_index": index,
        "leaf": base64.b64encode(leaf).decode(),
        "inclusion_proof": None if proof is None else [h.hex() for h in proof],
        "event_id": hashlib.sha256(leaf).hexdigest()[:16],
        "type": event["type"],
        "event_time": event["event_time"],
        "gln": event["gln"],
        "destination_gln": event.get("destination_gln"),
        "station_id": event["station_id"],
        "gtin": event["gtin"],
        "serial": event["serial"],
    }


def assemble(
    world: World,
    events: list[dict[str, Any]],
    leaves: list[bytes],
    size: int,
    note_signer: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """A verify document whose checkpoint covers the first ``size`` leaves."""
    note_text = checkpoint_text(ORIGIN, size, mth(leaves[:size]))
    note = note_signer(note_text) if note_signer else sign_note(note_text, ORIGIN, world.log_key)
    proofs = [path(i, leaves[:size]) if i < size else None for i in range(len(leaves))]
    entries = [
        readable(e, leaf, i, proofs[i])
        for i, (e, leaf) in enumerate(zip(events, leaves, strict=True))
    ]
    unit = {"gtin": GTIN, "serial": SERIAL, "lot": LOT, "expiry": EXPIRY, "state": "active"}
    return {
        "verdict": "authentic",
        "reasons": [],
        "unit": unit,
        "checkpoint": note,
        "events": entries,
    }


def build(world: World, total: int = 5, size: int = 5) -> dict[str, Any]:
    """A verify document of ``total`` honest events, ``size`` of them integrated."""
    events = [make_event(i) for i in range(total)]
    return assemble(world, events, [seal(world, e) for e in events], size)


def check(
    world: World, doc: dict[str, Any], station_key: ic.StationKeyFn | None = None
) -> list[ic.EventCheck]:
    """Run the checker with the world's log key and (by default) its station keys."""
    return ic.check_verify_document(
        doc,
        raw_public(world.log_key),
        ORIGIN,
        station_key or (lambda station_id: [world.station_key(station_id)]),
    )


def statuses(results: list[ic.EventCheck]) -> list[str]:
    """The status of every result, in order."""
    return [r.status for r in results]


@pytest.fixture
def world() -> World:
    """Fresh keys for one test."""
    return World()


# --------------------------------------------------------------------------- happy paths


def test_the_checker_runs_without_medtrace() -> None:
    """A user copies tools/independent_checker.py alone: it must load, and answer --help, with
    no medtrace module importable at all."""
    blocker = (
        "import sys\n"
        "class NoMedtrace:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'medtrace':\n"
        "            raise ImportError('medtrace is not installed here')\n"
        "sys.meta_path.insert(0, NoMedtrace())\n"
        "sys.argv = ['independent_checker.py', '--help']\n"
        "import runpy\n"
        "runpy.run_path(sys.argv_path, run_name='__main__')\n"
    ).replace("sys.argv_path", repr(ic.__file__))
    done = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_all_events_ok(world: World) -> None:
    doc = build(world)
    results = check(world, doc)
    assert statuses(results) == ["ok"] * 5
    assert [r.leaf_index for r in results] == [0, 1, 2, 3, 4]
    assert [r.event_id for r in results] == [e["event_id"] for e in doc["events"]]
    assert all(r.reason == "" for r in results)


def test_unintegrated_event_is_pending(world: World) -> None:
    results = check(world, build(world, total=6, size=5))
    assert statuses(results) == ["ok"] * 5 + ["pending"]
    assert "not yet integrated" in results[5].reason


def test_empty_checkpoint_makes_every_event_pending(world: World) -> None:
    assert statuses(check(world, build(world, total=3, size=0))) == ["pending"] * 3


def test_foreign_cosignature_is_ignored(world: World) -> None:
    doc = build(world)
    witness = Ed25519PrivateKey.generate()
    text = doc["checkpoint"].split("\n\n")[0] + "\n"
    doc["checkpoint"] += signature_line(text, "witness.example/w1", witness)
    assert statuses(check(world, doc)) == ["ok"] * 5


# --------------------------------------------------------------------------- tampered leaves


def test_flipped_leaf_byte_fails(world: World) -> None:
    doc = build(world)
    leaf = bytearray(base64.b64decode(doc["events"][2]["leaf"]))
    leaf[len(leaf) // 2] ^= 0x01
    doc["events"][2]["leaf"] = base64.b64encode(bytes(leaf)).decode()
    assert statuses(check(world, doc)) == ["ok", "ok", "failed", "ok", "ok"]


def _replace_leaf(doc: dict[str, Any], index: int, envelope: dict[str, Any]) -> None:
    """Swap in a canonical envelope and make the readable fields agree with it."""
    entry = doc["events"][index]
    entry["leaf"] = base64.b64encode(rfc8785.dumps(envelope)).decode()
    entry.update({k: envelope["event"][k] for k in ("type", "event_time", "gln")})


def test_edited_event_with_old_signature_fails(world: World) -> None:
    doc = build(world)
    envelope = ic.parse_canonical_leaf(base64.b64decode(doc["events"][1]["leaf"]))
    envelope["event"]["gln"] = "9506000000777"
    _replace_leaf(doc, 1, envelope)
    results = check(world, doc)
    assert results[1].status == "failed" and "signature" in results[1].reason


def test_resigned_event_fails_inclusion(world: World) -> None:
    doc = build(world)
    event = make_event(1) | {"gln": "9506000000777"}
    signature = world.stations[event["station_id"]].sign(rfc8785.dumps(event))
    envelope = envelope_of(event, signature)
    _replace_leaf(doc, 1, envelope)
    results = check(world, doc)
    assert results[1].status == "failed" and "inclusion proof" in results[1].reason


def test_non_canonical_leaf_fails(world: World) -> None:
    events = [make_event(i) for i in range(5)]
    leaves = [seal(world, e) for e in events]
    leaves[3] = leaves[3].replace(b'","', b'", "', 1)  # still valid JSON, extra whitespace
    results = check(world, assemble(world, events, leaves, 5))  # tree built over that leaf
    assert statuses(results) == ["ok", "ok", "ok", "failed", "ok"]
    assert "canonical" in results[3].reason


def test_envelope_station_differing_from_signed_event_fails(world: World) -> None:
    events = [make_event(i) for i in range(5)]
    leaves = [seal(world, e) for e in events]
    envelope = ic.parse_canonical_leaf(leaves[0]) | {"station_id": "ST-B"}
    leaves[0] = rfc8785.dumps(envelope)
    results = check(world, assemble(world, events, leaves, 5))
    assert results[0].status == "failed" and "station_id" in results[0].reason


def test_envelope_with_extra_key_fails(world: World) -> None:
    events = [make_event(i) for i in range(5)]
    leaves = [seal(world, e) for e in events]
    envelope = ic.parse_canonical_leaf(leaves[0]) | {"note": "unsigned"}
    leaves[0] = rfc8785.dumps(envelope)
    assert check(world, assemble(world, events, leaves, 5))[0].status == "failed"


# --------------------------------------------------------------------------- proofs


@pytest.mark.parametrize("position", [0, -1])
def test_changed_proof_hash_fails(world: World, position: int) -> None:
    doc = build(world)
    proof = doc["events"][2]["inclusion_proof"]
    proof[position] = ("0" if proof[position][0] != "0" else "1") + proof[position][1:]
    results = check(world, doc)
    assert statuses(results) == ["ok", "ok", "failed", "ok", "ok"]
    assert "inclusion proof" in results[2].reason


@pytest.mark.parametrize("edit", ["truncate", "extend", "not-hex"])
def test_malformed_proof_fails(world: World, edit: str) -> None:
    doc = build(world)
    proof = doc["events"][0]["inclusion_proof"]
    if edit == "truncate":
        proof.pop()
    elif edit == "extend":
        proof.append("00" * 32)
    else:
        proof[0] = "zz" * 32
    assert check(world, doc)[0].status == "failed"


def test_pending_event_with_proof_fails(world: World) -> None:
    doc = build(world, total=6, size=5)
    doc["events"][5]["inclusion_proof"] = doc["events"][4]["inclusion_proof"]
    assert check(world, doc)[5].status == "failed"


def test_integrated_event_without_proof_fails(world: World) -> None:
    doc = build(world)
    doc["events"][0]["inclusion_proof"] = None
    assert check(world, doc)[0].status == "failed"


def test_moved_leaf_index_fails(world: World) -> None:
    doc = build(world)
    doc["events"][1]["leaf_index"] = 3
    assert check(world, doc)[1].status == "failed"


def test_duplicate_leaf_index_fails(world: World) -> None:
    doc = build(world)
    doc["events"].append(dict(doc["events"][0]))
    assert statuses(check(world, doc)) == ["ok"] * 5 + ["failed"]


def test_verify_inclusion_agrees_with_naive_tree() -> None:
    leaves = [bytes([i]) * (i + 1) for i in range(21)]
    for size in range(1, len(leaves)):
        root, bigger_root = mth(leaves[:size]), mth(leaves[: size + 1])
        for m in range(size):
            proof = path(m, leaves[:size])
            assert ic.verify_inclusion(ic.leaf_hash(leaves[m]), m, size, proof, root)
            assert not ic.verify_inclusion(ic.leaf_hash(leaves[m]), m, size + 1, proof, bigger_root)
            assert not ic.verify_inclusion(ic.leaf_hash(leaves[m]), m ^ 1, size, proof, root)
            assert not ic.verify_inclusion(ic.leaf_hash(leaves[size]), m, size, proof, root)
        assert not ic.verify_inclusion(ic.leaf_hash(leaves[0]), size, size, [], root)


def test_verify_inclusion_rejects_proof_of_wrong_length() -> None:
    """The path length is fixed by (index, size): shorter or longer proofs must fail."""
    leaves = [bytes([i]) for i in range(12)]
    for size in range(1, len(leaves) + 1):
        for m in range(size):
            proof, root = path(m, leaves[:size]), mth(leaves[:size])
            for claimed in range(m + 1, 2 * len(leaves)):
                if len(path(m, [b""] * claimed)) != len(proof):
                    assert not ic.verify_inclusion(ic.leaf_hash(leaves[m]), m, claimed, proof, root)


# --------------------------------------------------------------------------- stations


def test_wrong_station_key_fails(world: World) -> None:
    other = raw_public(Ed25519PrivateKey.generate())
    results = check(world, build(world), station_key=lambda _sid: [other])
    assert statuses(results) == ["failed"] * 5
    assert all("signature" in r.reason for r in results)


def test_swapped_station_keys_fail(world: World) -> None:
    swap = {"ST-A": "ST-B", "ST-B": "ST-A"}
    results = check(world, build(world), station_key=lambda sid: [world.station_key(swap[sid])])
    assert statuses(results) == ["failed"] * 5


def test_unknown_station_fails(world: World) -> None:
    doc = build(world)
    del world.stations["ST-B"]
    results = check(world, doc)
    assert statuses(results) == ["ok", "failed", "ok", "failed", "ok"]
    assert "no public key" in results[1].reason


# --------------------------------------------------------------------------- readable fields


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("type", "decommission"),
        ("event_time", "2026-02-01T10:00:00Z"),
        ("gln", "9506000000888"),
        ("destination_gln", "9506000000111"),
        ("station_id", "ST-B"),
        ("gtin", "09506000134369"),
        ("serial", "SER2"),
    ],
)
def test_readable_field_differing_from_signed_event_fails(
    world: World, field_name: str, value: str
) -> None:
    doc = build(world)
    doc["events"][2][field_name] = value
    results = check(world, doc)
    assert statuses(results) == ["ok", "ok", "failed", "ok", "ok"]
    assert field_name in results[2].reason


def test_destination_removed_from_readable_ship_event_fails(world: World) -> None:
    doc = build(world)
    assert doc["events"][2]["type"] == "ship"
    doc["events"][2]["destination_gln"] = None
    assert check(world, doc)[2].status == "failed"


def test_events_of_another_unit_fail(world: World) -> None:
    doc = build(world)
    doc["unit"]["serial"] = "SER9"
    assert statuses(check(world, doc)) == ["failed"] * 5


# --------------------------------------------------------------------------- checkpoints


def _other_key_same_name(world: World, text: str) -> str:
    return sign_note(text, ORIGIN, Ed25519PrivateKey.generate())


def _right_key_other_name(world: World, text: str) -> str:
    return sign_note(text, "other.test/log", world.log_key)


def _origin_not_key_name(world: World, text: str) -> str:
    return sign_note(text.replace(ORIGIN, "other.test/log", 1), ORIGIN, world.log_key)


def _size_edited_after_signing(world: World, text: str) -> str:
    return sign_note(text, ORIGIN, world.log_key).replace("\n5\n", "\n6\n", 1)


def _hyphen_instead_of_em_dash(world: World, text: str) -> str:
    return sign_note(text, ORIGIN, world.log_key).replace("\u2014", "-")


def _unsigned(world: World, text: str) -> str:
    return text


@pytest.mark.parametrize(
    "signer",
    [
        _other_key_same_name,
        _right_key_other_name,
        _origin_not_key_name,
        _size_edited_after_signing,
        _hyphen_instead_of_em_dash,
        _unsigned,
    ],
)
def test_bad_checkpoint_raises(world: World, signer: Callable[[World, str], str]) -> None:
    events = [make_event(i) for i in range(5)]
    doc = assemble(
        world, events, [seal(world, e) for e in events], 5, lambda text: signer(world, text)
    )
    with pytest.raises(ic.CheckpointInvalid):
        check(world, doc)


def test_line_from_another_key_under_the_log_name_is_ignored(world: World) -> None:
    """C2SP signed-note: lines whose (name, key ID) is unknown are ignored, e.g. a rotated key."""
    doc = build(world)
    text = doc["checkpoint"].split("\n\n")[0] + "\n"
    rotated = Ed25519PrivateKey.generate()
    log_line = doc["checkpoint"][len(text) + 1 :]
    doc["checkpoint"] = text + "\n" + signature_line(text, ORIGIN, rotated) + log_line
    assert doc["checkpoint"].count("\u2014") == 2
    assert statuses(check(world, doc)) == ["ok"] * 5


def test_bad_log_signature_among_good_ones_raises(world: World) -> None:
    doc = build(world)
    forged = note_key_id(ORIGIN, world.log_key) + bytes(64)
    doc["checkpoint"] += f"\u2014 {ORIGIN} {base64.b64encode(forged).decode()}\n"
    with pytest.raises(ic.CheckpointInvalid):
        check(world, doc)


def test_verify_checkpoint_parses_body(world: World) -> None:
    root = hashlib.sha256(b"root").digest()
    note = sign_note(checkpoint_text(ORIGIN, 42, root) + "ext line\n", ORIGIN, world.log_key)
    parsed = ic.verify_checkpoint(note, raw_public(world.log_key), ORIGIN)
    assert parsed == ic.Checkpoint(ORIGIN, 42, root, ("ext line",))


@pytest.mark.parametrize("size_text", ["042", "-1", "4 2", "18446744073709551616"])
def test_malformed_checkpoint_size_raises(world: World, size_text: str) -> None:
    text = f"{ORIGIN}\n{size_text}\n{base64.b64encode(bytes(32)).decode()}\n"
    with pytest.raises(ic.CheckpointInvalid):
        ic.verify_checkpoint(
            sign_note(text, ORIGIN, world.log_key), raw_public(world.log_key), ORIGIN
        )


# --------------------------------------------------------------------------- keys


def test_parse_vkey(world: World) -> None:
    assert ic.parse_vkey(vkey_for(ORIGIN, world.log_key)) == (ORIGIN, raw_public(world.log_key))
    assert ic.key_id(ORIGIN, raw_public(world.log_key)) == note_key_id(ORIGIN, world.log_key)


BAD_VKEY_EDITS: list[Callable[[str], str]] = [
    lambda v: v.replace(ORIGIN, "other.test/log"),
    lambda v: v + "+x",
    lambda v: v[:-4],
]


@pytest.mark.parametrize("mangle", BAD_VKEY_EDITS)
def test_parse_vkey_rejects_bad_keys(world: World, mangle: Callable[[str], str]) -> None:
    with pytest.raises(ValueError):
        ic.parse_vkey(mangle(vkey_for(ORIGIN, world.log_key)))


def test_parse_verify_url() -> None:
    assert ic.parse_verify_url(VERIFY_URL) == (BASE, {"01": GTIN, "10": LOT, "21": SERIAL})
    assert ic.parse_verify_url("/app/01/9506000134352/21/A%2FB")[0] == "/app"
    assert ic.parse_verify_url("/01/9506000134352/21/A%2FB")[1]["21"] == "A/B"


# --------------------------------------------------------------------------- token leaves


@pytest.mark.parametrize("source", ["epcis", "fhir"])
def test_a_token_captured_event_is_unsigned_not_failed(world: World, source: str) -> None:
    events = [make_event(i) for i in range(3)]
    leaves = [seal(world, e) for e in events]
    recorded = {k: v for k, v in make_event(4).items() if k != "station_id"}
    token_leaf = {source: {"as": "sent"}, "event": recorded, "participant": "9506000000004"}
    leaves.append(rfc8785.dumps(token_leaf))
    doc = assemble(world, [*events, recorded | {"station_id": None}], leaves, 4)

    results = check(world, doc)

    assert statuses(results) == ["ok", "ok", "ok", "unsigned"]
    assert "9506000000004" in results[3].reason


# --------------------------------------------------------------------------- lot documents

REPORT = b"%PDF-1.4 inspection report of LOT1"
CERTIFICATE = b"%PDF-1.4 certificate of analysis of LOT1"


def lot_record_event(files: dict[str, bytes], **changes: Any) -> dict[str, Any]:
    """A lot_record signed by station ST-A naming ``files`` by SHA-256 and size."""
    return {
        "type": "lot_record",
        "gtin": GTIN,
        "lot": LOT,
        "version": 1,
        "production_date": "2025-12-01",
        "expiry": EXPIRY,
        "quantity": 100,
        "product": {"name_en": "Test tablets"},
        "documents": [
            {
                "kind": "inspection_report",
                "filename": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            for name, data in files.items()
        ],
        "event_time": "2026-01-09T10:00:00Z",
        "gln": "9506000000001",
        "station_id": "ST-A",
    } | changes


def with_lot_record(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """A verify document of three events and, in the same log, the unit's lot record."""
    events = [make_event(i) for i in range(3)]
    leaves = [seal(world, e) for e in events] + [seal(world, record)]
    doc = assemble(world, [*events, make_event(3)], leaves, 4)
    entry = doc["events"].pop()
    doc["lot_records"] = [
        {
            "version": record["version"],
            "leaf_index": entry["leaf_index"],
            "leaf": entry["leaf"],
            "inclusion_proof": entry["inclusion_proof"],
            "event_id": entry["event_id"],
            "event_time": record["event_time"],
            "gln": record["gln"],
            "station_id": record["station_id"],
            "participant": None,
            "documents": [
                d | {"url": f"{BASE}/api/v1/documents/{d['sha256']}"} for d in record["documents"]
            ],
        }
    ]
    return doc


def served(*files: bytes) -> Callable[[str], bytes]:
    """A document source serving ``files`` by their SHA-256."""
    by_hash = {hashlib.sha256(data).hexdigest(): data for data in files}
    return lambda sha256: by_hash[sha256]


def check_lot(world: World, doc: dict[str, Any], fetch: Callable[[str], bytes] | None) -> Any:
    return ic.check_verify_document(
        doc, raw_public(world.log_key), ORIGIN, lambda sid: [world.station_key(sid)], fetch
    )


def test_lot_documents_that_match_the_signed_record_pass(world: World) -> None:
    doc = with_lot_record(world, lot_record_event({"r.pdf": REPORT, "c.pdf": CERTIFICATE}))

    results = check_lot(world, doc, served(REPORT, CERTIFICATE))

    assert statuses(results) == ["ok"] * 4
    assert results[3].kind == "lot_record" and results[3].leaf_index == 3
    assert results[3].reason == "2 documents match: r.pdf, c.pdf"
    unfetched = check_lot(world, doc, None)[3]
    assert (unfetched.status, unfetched.reason) == ("ok", "2 documents named, not downloaded")


def test_a_swapped_document_fails_naming_it(world: World) -> None:
    doc = with_lot_record(world, lot_record_event({"r.pdf": REPORT, "c.pdf": CERTIFICATE}))
    forged = {hashlib.sha256(CERTIFICATE).hexdigest(): b"%PDF-1.4 FORGED"}

    result = check_lot(world, doc, lambda sha: forged.get(sha) or served(REPORT)(sha))[3]

    assert result.status == "failed"
    assert result.reason.startswith("document 'c.pdf' downloaded has SHA-256")


def test_a_document_that_cannot_be_downloaded_fails(world: World) -> None:
    doc = with_lot_record(world, lot_record_event({"r.pdf": REPORT}))

    result = check_lot(world, doc, served())[3]

    assert result.status == "failed" and "cannot be downloaded" in result.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["lot_records"][0]["documents"][0].update(sha256="0" * 64), "differs"),
        (lambda d: d["lot_records"][0]["documents"].pop(), "documents' differ"),
        (lambda d: d["lot_records"][0].update(version=2), "'version' differs"),
        (lambda d: d["unit"].update(lot="LOT2"), "not the unit's"),
        (lambda d: d["lot_records"][0]["inclusion_proof"].reverse(), "inclusion proof"),
    ],
    ids=["shown-hash", "hidden-document", "version", "another-lot", "proof"],
)
def test_a_lot_record_shown_otherwise_than_signed_fails(
    world: World, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    doc = with_lot_record(world, lot_record_event({"r.pdf": REPORT, "c.pdf": CERTIFICATE}))
    change(doc)

    result = check_lot(world, doc, served(REPORT, CERTIFICATE))[3]

    assert result.status == "failed" and reason in result.reason, result.reason


def test_a_lot_record_with_a_forged_signature_fails(world: World) -> None:
    record = lot_record_event({"r.pdf": REPORT})
    doc = with_lot_record(world, record)
    envelope = ic.parse_canonical_leaf(base64.b64decode(doc["lot_records"][0]["leaf"]))
    envelope["event"]["quantity"] = 1
    doc["lot_records"][0]["leaf"] = base64.b64encode(rfc8785.dumps(envelope)).decode()

    result = check_lot(world, doc, served(REPORT))[3]

    assert result.status == "failed" and "signature" in result.reason


# --------------------------------------------------------------------------- HTTP and CLI


def mock_client(world: World, doc: dict[str, Any], fetches: Counter[str]) -> httpx.Client:
    """An httpx client answering the product's three endpoints from the test world."""

    def handler(request: httpx.Request) -> httpx.Response:
        fetches[request.url.path] += 1
        if request.url.path == "/api/v1/ledger/public-key":
            key = base64.b64encode(raw_public(world.log_key)).decode()
            body = {"key_name": ORIGIN, "public_key": key, "vkey": vkey_for(ORIGIN, world.log_key)}
            return httpx.Response(200, json=body)
        if request.url.path.startswith("/api/v1/stations/"):
            sid = request.url.path.rsplit("/", 1)[1]
            if sid not in world.stations:
                return httpx.Response(404, json={"detail": "not found"})
            key = base64.b64encode(world.station_key(sid)).decode()
            body = {
                "station_id": sid,
                "participant": "p",
                "public_key": key,
                "active": True,
                "keys": [{"public_key": key}],
            }
            return httpx.Response(200, json=body)
        wants_json = request.headers.get("accept") == "application/json"
        if request.url.path == f"/01/{GTIN}/10/{LOT}/21/{SERIAL}" and wants_json:
            return httpx.Response(200, json=doc)
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_check_url_fetches_and_caches_keys(world: World) -> None:
    fetches: Counter[str] = Counter()
    with mock_client(world, build(world, total=6, size=5), fetches) as client:
        results = ic.check_url(VERIFY_URL, client=client)
    assert statuses(results) == ["ok"] * 5 + ["pending"]
    assert fetches["/api/v1/stations/ST-A"] == 1 and fetches["/api/v1/stations/ST-B"] == 1


def test_check_url_with_out_of_band_vkey(world: World) -> None:
    fetches: Counter[str] = Counter()
    other = vkey_for(ORIGIN, Ed25519PrivateKey.generate())
    with mock_client(world, build(world), fetches) as client:
        good = vkey_for(ORIGIN, world.log_key)
        assert statuses(ic.check_url(VERIFY_URL, client=client, vkey=good)) == ["ok"] * 5
        with pytest.raises(ic.CheckpointInvalid):
            ic.check_url(VERIFY_URL, client=client, vkey=other)
    assert fetches["/api/v1/ledger/public-key"] == 0


def test_check_url_rejects_document_for_another_unit(world: World) -> None:
    doc = build(world)
    doc["unit"]["serial"] = "SER9"
    with mock_client(world, doc, Counter()) as client, pytest.raises(ic.DocumentInvalid):
        ic.check_url(VERIFY_URL, client=client)


def test_cli_reports_each_event(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    doc = build(world, total=6, size=5)
    doc["events"][1]["gln"] = "9506000000888"
    with mock_client(world, doc, Counter()) as client:
        code = ic.main([VERIFY_URL], client=client)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(lines) == 6
    assert lines[0].endswith(": OK") and "FAILED" in lines[1] and "PENDING" in lines[5]


def test_cli_exit_codes(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_client(world, build(world, total=6, size=5), Counter()) as client:
        assert ic.main([VERIFY_URL], client=client) == 0
    bad = build(world)
    bad["checkpoint"] = sign_note(
        checkpoint_text(ORIGIN, 5, bytes(32)), ORIGIN, Ed25519PrivateKey.generate()
    )
    with mock_client(world, bad, Counter()) as client:
        assert ic.main([VERIFY_URL], client=client) == 1
    with mock_client(world, build(world), Counter()) as client:
        assert ic.main([f"{BASE}/01/{GTIN}/21/NOPE"], client=client) == 2
    assert "CheckpointInvalid" in capsys.readouterr().out
