"""Leader election between processes: exactly one process leads a named job at a time.

The sequencer leads the log's integration this way; the application's scheduler takes a lock
of another name from the same ``leader_lock``.

On PostgreSQL the leader holds a session-level advisory lock (``pg_try_advisory_lock``) on a
connection of its own for as long as it leads. The server drops the lock the moment that
session ends, so a killed or partitioned leader loses it and another process takes over on its
next try. On SQLite the leader holds an exclusive file lock next to the database file, which
the operating system drops when the process dies.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["LeaderLock", "leader_lock"]

log = logging.getLogger(__name__)


def _advisory_key(name: str) -> int:
    """The 64-bit advisory lock key of a lock name: every process of one database agrees."""
    return int.from_bytes(
        hashlib.sha256(f"medtrace.{name}".encode()).digest()[:8], "big", signed=True
    )


class LeaderLock(Protocol):
    """A non-blocking lock that one process holds while it leads."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return whether this process now holds it."""

    def still_held(self) -> bool:
        """Whether this process still holds the lock (False once it has been lost)."""

    def release(self) -> None:
        """Give the lock up (nothing happens if it is not held)."""


class AdvisoryLock:
    """A PostgreSQL session advisory lock held on a dedicated connection."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._key = _advisory_key(name)
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self._engine.connect()
        try:
            taken = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar_one()
            )
            conn.commit()
        except SQLAlchemyError:
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        # A session lock lasts as long as its session: a live connection still holds it.
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except SQLAlchemyError:
            log.warning("lost the sequencer's lock connection")
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._conn.commit()
        except SQLAlchemyError:
            log.warning("could not release the sequencer's lock; its session ends anyway")
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                log.debug("closing a broken lock connection failed", exc_info=True)
            self._conn = None


class FileLeaderLock:
    """An exclusive file lock (``filelock``) next to a SQLite database file."""

    def __init__(self, path: Path) -> None:
        self._lock = FileLock(path)

    def try_acquire(self) -> bool:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def still_held(self) -> bool:
        return self._lock.is_locked

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)


class NoLock:
    """For a private in-memory database: only this process can reach it."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def leader_lock(engine: Engine, *, name: str = "sequencer") -> LeaderLock:
    """The lock named ``name`` that fits the engine's database (one leader per name)."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return FileLeaderLock(Path(f"{database}.{name}.lock"))
    return NoLock()
