"""The leader lock: one holder per name and database, on PostgreSQL and on SQLite."""

from __future__ import annotations

from medtrace.db import create_db_engine, upgrade_schema
from medtrace.ledger.lock import leader_lock


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
