"""The SQL log and the sequencer, on SQLite, with the ledger's own tables only."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, insert

from medtrace.ledger import (
    NoteSigner,
    NoteVerifier,
    Sequencer,
    leaf_hash,
    open_checkpoint,
    root_hash,
    sql,
    verify_consistency,
    verify_inclusion,
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    sql.ledger_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(sql.head_table), sql.initial_rows())
        conn.execute(insert(sql.tree_table), sql.initial_tree_rows())
    return engine


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner("example.org/log", Ed25519PrivateKey.generate())


def append(engine: Engine, *data: bytes) -> int:
    with engine.begin() as conn:
        sql.begin_append(conn)
        return sql.append_leaves(conn, list(data))


def test_indexes_are_dense_across_writers_and_a_rollback_leaves_no_hole(engine: Engine) -> None:
    assert append(engine, b"a", b"b") == 0
    with pytest.raises(RuntimeError), engine.begin() as conn:
        sql.append_leaves(conn, [b"lost"])
        raise RuntimeError("the writer fails before committing")
    assert append(engine, b"c") == 2
    with engine.connect() as conn:
        assert sql.committed_size(conn) == 3
        assert [d for _, d in sql.leaf_data(conn, 0, 10)] == [b"a", b"b", b"c"]


def test_each_integration_signs_a_consistent_checkpoint_and_keeps_history(
    engine: Engine, signer: NoteSigner
) -> None:
    sequencer = Sequencer(engine, signer)
    verifier = NoteVerifier.from_vkey(signer.vkey)
    leaves = [f"leaf {i}".encode() for i in range(7)]
    append(engine, *leaves[:3])
    first = sequencer.integrate()
    assert sequencer.integrate() is None, "nothing new, nothing signed"
    append(engine, *leaves[3:])
    second = sequencer.integrate()
    assert first is not None and second is not None

    one, two = open_checkpoint(first.note, verifier), open_checkpoint(second.note, verifier)
    assert (one.size, one.root_hash) == (3, root_hash(leaves[:3]))
    assert (two.size, two.root_hash) == (7, root_hash(leaves))
    with engine.connect() as conn:
        proof = sql.consistency_proof_at(conn, 3, 7)
        inclusion = sql.inclusion_proofs_at(conn, [0, 6], 7)
    assert verify_consistency(3, 7, one.root_hash, two.root_hash, proof)
    assert verify_inclusion(leaf_hash(leaves[6]), 6, 7, inclusion[6], two.root_hash)


def test_run_integrates_on_its_interval_until_stopped(engine: Engine, signer: NoteSigner) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=Sequencer(engine, signer, batch_interval=0.05).run, args=(stop,)
    )
    worker.start()
    append(engine, b"x", b"y")
    try:
        for _ in range(200):
            with engine.connect() as conn:
                latest = sql.latest_checkpoint(conn)
            if latest is not None and latest.size == 2:
                break
            stop.wait(0.05)
        assert latest is not None and latest.size == 2
    finally:
        stop.set()
        worker.join(timeout=5)
    assert not worker.is_alive()
