"""Sequencer failover: the leader is killed mid-batch, another takes over (PostgreSQL, SQLite).

Two sequencer processes share one log (advisory lock on PostgreSQL, file lock on SQLite). The
leader is SIGKILLed while its integration transaction is open; the follower must take the lock
within seconds, and the log must end up with every leaf integrated exactly once: increasing
checkpoint sizes with the right roots, consistent with each other, and tiles equal to a tree
rebuilt from scratch.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from medtrace.cli.ledger import DatabaseSource
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.ledger import NoteSigner, NoteVerifier, open_checkpoint, root_hash, sql
from medtrace.ledger.audit import audit
from medtrace.protocol.keys import write_key_file

pytestmark = pytest.mark.slow

SEQUENCER = """
import sys, threading
from pathlib import Path
from sqlalchemy import create_engine
from medtrace.db import create_db_engine
from medtrace.protocol.keys import read_key_file
from medtrace.ledger import NoteSigner, Sequencer
url, key, name = sys.argv[1:4]
engine = (
    create_db_engine(url)
    if url.startswith("sqlite")
    else create_engine(url, connect_args={"application_name": name})
)
signer = NoteSigner("example.org/log", read_key_file(Path(key)))
Sequencer(engine, signer, batch_interval=0.05).run(threading.Event())
"""


def start_sequencer(url: str, key: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SEQUENCER, url, str(key), name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def append(engine: Engine, first: int, count: int) -> None:
    with engine.begin() as conn:
        sql.append_leaves(conn, [f"leaf {i}".encode() for i in range(first, first + count)])


def open_transaction_of(engine: Engine, name: str) -> bool:
    """Whether the process named ``name`` has a transaction open that writes the tree."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                    "AND xact_start IS NOT NULL AND query ILIKE '%ledger_%' "
                    "AND query NOT ILIKE '%pg_try_advisory_lock%' AND state <> 'idle'"
                ),
                {"name": name},
            ).scalar_one()
        )


def wait_until(predicate: object, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"{what} within {timeout} s")


def test_a_killed_leader_loses_and_duplicates_nothing(
    fresh_database_url: str, tmp_path: Path
) -> None:
    postgres_url = fresh_database_url
    engine = create_db_engine(postgres_url)
    upgrade_schema(engine)
    key = tmp_path / "log.pem"
    signer = NoteSigner("example.org/log", write_key_file(key))
    leader = start_sequencer(postgres_url, key, "sequencer-a")
    append(engine, 0, 1000)

    def signed() -> bool:
        with engine.connect() as conn:
            return sql.latest_checkpoint(conn) is not None

    wait_until(signed, 20, "a first checkpoint")
    follower = start_sequencer(postgres_url, key, "sequencer-b")
    try:
        time.sleep(1.0)  # the follower is now waiting for the lock
        append(engine, 1000, 300_000)  # a batch long enough to be killed in the middle of
        if engine.dialect.name == "postgresql":
            wait_until(lambda: open_transaction_of(engine, "sequencer-a"), 20, "a mid-batch leader")
        else:
            time.sleep(0.3)  # SQLite shows no activity; the batch takes seconds to integrate
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        with engine.connect() as conn:
            at_kill = sql.integrated_size(conn)
        assert at_kill < 301_000, "the leader was killed before it committed the big batch"
        append(engine, 301_000, 500)  # capture goes on while nobody leads
        total = 301_500

        def moved() -> bool:
            with engine.connect() as conn:
                return sql.integrated_size(conn) > at_kill

        # Taking the lock is quick (a retry every 0.5 s); integrating 300 000 leaves takes the rest.
        assert wait_until(moved, 15, "the follower taking over") < 15

        def integrated_all() -> bool:
            with engine.connect() as conn:
                return sql.integrated_size(conn) == total

        wait_until(integrated_all, 60, "the follower integrating everything")
    finally:
        follower.send_signal(signal.SIGKILL)
        follower.wait(timeout=10)
        if leader.poll() is None:
            leader.kill()
    verifier = NoteVerifier.from_vkey(signer.vkey)
    leaves = [f"leaf {i}".encode() for i in range(total)]
    with engine.connect() as conn:
        history = sql.checkpoints(conn, limit=10_000)
    sizes = [c.size for c in history]
    assert sizes == sorted(set(sizes)) and sizes[-1] == total
    for stored in (history[0], history[len(history) // 2], history[-1]):
        checkpoint = open_checkpoint(stored.note, verifier)
        assert checkpoint.root_hash == root_hash(leaves[: checkpoint.size])
    assert audit(DatabaseSource(engine), verifier) == [], "tiles, roots and consistency"
    engine.dispose()
