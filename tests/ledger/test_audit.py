"""The offline audit on a log built in-process: tampered stored hashes and leaves are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select, update

from medtrace.cli.ledger import DatabaseSource, envelope_problem
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.ledger import MAX_ENTRY_SIZE, NoteSigner, NoteVerifier, Sequencer, audit, sql
from medtrace.ledger._tree import decode_entry_bundle
from medtrace.protocol.envelope import CanonicalEnvelope, leaf_bytes, sign_event

SIZE = 700  # two full level-0 tiles and a partial one


def make_log(tmp_path: Path) -> tuple[Engine, Sequencer, NoteVerifier]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'log.db'}")
    upgrade_schema(engine)
    signer = NoteSigner("example.org/log", Ed25519PrivateKey.generate())
    sequencer = Sequencer(engine, signer)
    for first in range(0, SIZE, 100):
        with engine.begin() as conn:
            sql.append_leaves(conn, [f"leaf {i}".encode() for i in range(first, first + 100)])
        sequencer.integrate()
    return engine, sequencer, NoteVerifier.from_vkey(signer.vkey)


@pytest.fixture
def log(tmp_path: Path) -> tuple[Engine, NoteVerifier]:
    engine, _, verifier = make_log(tmp_path)
    return engine, verifier


def flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1 :]


def test_a_sound_log_has_no_finding(log: tuple[Engine, NoteVerifier]) -> None:
    engine, verifier = log
    assert audit(DatabaseSource(engine), verifier) == []


def test_an_altered_inner_node_is_named_by_its_first_leaf(
    log: tuple[Engine, NoteVerifier],
) -> None:
    engine, verifier = log
    tiles = sql.tiles_table
    where = (tiles.c.level == 0) & (tiles.c.idx == 1)
    with engine.begin() as conn:
        inner = conn.execute(select(tiles.c.inner_nodes).where(where)).scalar_one()
        # Height 3 starts after 128 + 64 hashes; its 5th node covers leaves 256 + 32 ...
        conn.execute(update(tiles).where(where).values(inner_nodes=flip(inner, (192 + 4) * 32)))
    findings = audit(DatabaseSource(engine), verifier)
    assert [f.index for f in findings] == [256 + 4 * 8]
    assert "inner hash of the 8 leaves from leaf 288" in findings[0].what


def test_an_altered_level_one_hash_and_a_forged_checkpoint_are_found(
    log: tuple[Engine, NoteVerifier],
) -> None:
    engine, verifier = log
    tiles = sql.tiles_table
    where = (tiles.c.level == 1) & (tiles.c.idx == 0)
    with engine.begin() as conn:
        blob = conn.execute(select(tiles.c.hashes).where(where)).scalar_one()
        conn.execute(update(tiles).where(where).values(hashes=flip(blob, 32)))
        conn.execute(
            update(sql.checkpoints_table)
            .where(sql.checkpoints_table.c.size == 300)
            .values(note=sql.checkpoints_table.c.note + "x")
        )
    findings = audit(DatabaseSource(engine), verifier)
    assert findings[0].index == -1 and "checkpoint of size 300" in findings[0].what
    assert findings[1].index == 256, "the second subtree of 256 leaves"


def test_envelope_problem_checks_canonical_form_and_station_signature() -> None:
    key = Ed25519PrivateKey.generate()
    event = {"type": "receive", "gtin": "09521234000112", "serial": "A1", "station_id": "s"}
    leaf = leaf_bytes(sign_event(event, station_id="s", key=key))
    keys = {"s": [key.public_key().public_bytes_raw()]}
    assert envelope_problem(leaf, keys.get) is None
    rotated = {"s": [Ed25519PrivateKey.generate().public_key().public_bytes_raw(), *keys["s"]]}
    assert envelope_problem(leaf, rotated.get) is None, "an older key of the station signed it"
    assert envelope_problem(leaf.replace(b'"A1"', b'"A2"'), keys.get) == (
        "the signature of station 's' does not verify"
    )
    assert envelope_problem(leaf.replace(b"{", b"{ ", 1), keys.get) == "not RFC 8785 canonical JSON"
    assert envelope_problem(leaf, {}.get) == "station 's' is not registered"
    assert envelope_problem(b'{"reading": {}, "sensor_id": "x"}', keys.get) is None


def test_envelope_problem_reads_a_leaf_captured_under_a_grant() -> None:
    """The signed bytes of a leaf with ``captured_by`` start after that member; a
    ``captured_by`` that is no GLN is named."""
    key = Ed25519PrivateKey.generate()
    event = {"type": "receive", "gln": "9525678000004", "serial": "A1", "station_id": "s"}
    canonical = CanonicalEnvelope.of(sign_event(event, station_id="s", key=key))
    keys = {"s": [key.public_key().public_bytes_raw()]}
    assert envelope_problem(canonical.leaf(captured_by="9520000000013"), keys.get) is None
    forged = canonical.leaf(captured_by="9520000000013").replace(b'"A1"', b'"A2"')
    assert envelope_problem(forged, keys.get) == "the signature of station 's' does not verify"
    assert envelope_problem(canonical.leaf(captured_by="x"), keys.get) == (
        "captured_by is not a GLN"
    )


class _TamperedBundles:
    """Entry bundles as the database serves them, one entry of leaf ``at`` altered."""

    def __init__(self, engine: Engine, at: int) -> None:
        self._source = DatabaseSource(engine)
        self._at = at

    def entry_bundle(self, index: int, width: int) -> bytes:
        bundle = self._source.entry_bundle(index, width)
        if index != self._at // 256:
            return bundle
        entries = decode_entry_bundle(bundle)
        entries[self._at % 256] = flip(entries[self._at % 256], 0)
        return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def test_entry_bundles_are_checked_against_the_leaves(log: tuple[Engine, NoteVerifier]) -> None:
    engine, verifier = log
    source = DatabaseSource(engine)
    assert audit(source, verifier, entries=source) == []

    findings = audit(source, verifier, entries=_TamperedBundles(engine, 600))

    assert [(f.index, f.what) for f in findings] == [
        (600, "leaf 600: its entry in bundle 2 is not the leaf")
    ]


def test_a_leaf_too_long_for_an_entry_is_found_at_its_index(tmp_path: Path) -> None:
    engine, sequencer, verifier = make_log(tmp_path)
    with engine.begin() as conn:
        sql.append_leaves(conn, [b"x" * (MAX_ENTRY_SIZE + 1)])
    sequencer.integrate()
    source = DatabaseSource(engine)

    findings = audit(source, verifier, entries=source)

    assert [f.index for f in findings if "entry" in f.what] == [SIZE]
    assert f"leaf {SIZE} has {MAX_ENTRY_SIZE + 1} bytes" in findings[-1].what
