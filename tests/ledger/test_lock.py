"""The leader lock: one holder per name and database, on PostgreSQL and on SQLite; and
SQLite writers' turns."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from medtrace.db import create_db_engine, upgrade_schema
from medtrace.ledger.lock import leader_lock, writer_turn


def test_one_process_leads_and_another_takes_over_after_release(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    upgrade_schema(engine)
    first, second = leader_lock(engine), leader_lock(engine)
    other_job = leader_lock(engine, name="scheduler")
    try:
        assert first.try_acquire()
        assert first.still_held()
        assert not second.try_acquire(), "a second leader for the same log"
        assert other_job.try_acquire(), "another name is another lock"
        first.release()
        assert not first.still_held()
        assert second.try_acquire()
    finally:
        for lock in (first, second, other_job):
            lock.release()
        engine.dispose()


def test_sqlite_writers_take_turns(tmp_path: Path) -> None:
    """A writer waiting for its turn blocks until the holder leaves, then enters; another
    process queues the same way, as the turn is a flock on a file next to the database."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    entered = threading.Event()
    entered_at: list[float] = []

    def second_writer() -> None:
        with writer_turn(engine):
            entered_at.append(time.perf_counter())
            entered.set()

    with writer_turn(engine):
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not entered.wait(0.3), "two writers held the turn at once"
        released = time.perf_counter()
    assert entered.wait(5)
    thread.join()
    assert entered_at[0] >= released, "the second writer entered before the first left"
    engine.dispose()


def test_writer_turns_never_block_on_postgresql(fresh_database_url: str) -> None:
    """PostgreSQL orders writers with row locks: there a turn is nothing to wait for."""
    engine = create_db_engine(fresh_database_url)
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite takes turns (the test above)")
    with writer_turn(engine), writer_turn(engine):
        pass
    engine.dispose()
