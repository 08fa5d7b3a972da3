"""SQLite writers' turns: one writer at a time queues in the kernel, not in SQLite's busy
handler; PostgreSQL needs none."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from medtrace.db import create_db_engine, writer_turn


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
