"""The database: engine construction and schema migrations.

SQLite is the embedded default (one machine, the demo); PostgreSQL is the production store.
SQLite runs in WAL mode with ``synchronous=FULL``: a capture is acknowledged only after its
commit, so the commit must survive a power cut, not merely a crash of the process. The schema
changes only through Alembic migrations (``medtrace.migrations``), applied at start-up and by
``medtrace db upgrade``.

Writers' turns (``writer_turn``): SQLite lets one transaction write at a time, and a writer
that finds the database taken sleeps in SQLite's busy handler, in growing steps of up to
100 ms, however soon the other commits. Two API processes capturing at once lost up to a few
seconds per batch that way (batch p99 1.5-3 s at 500 events). A writer that first takes an
exclusive ``flock`` on a file next to the database waits in the kernel instead, and wakes the
moment the previous writer releases it. PostgreSQL needs no turn: its row locks queue. The
ledger's sequencer is one of these writers: the application hands it ``writer_turn``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

# PostgreSQL SQLSTATEs that mean "another transaction won; retry": serialization failure,
# deadlock. (A unique violation arrives as IntegrityError.)
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``, with SQLite tuned for durability and concurrent readers."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def alembic_config(engine: Engine) -> Config:
    """Alembic settings for migrating ``engine`` (the migrations ship inside the package)."""
    config = Config()
    config.set_main_option("script_location", "medtrace:migrations")
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine) -> None:
    """Apply every pending migration, on every branch (idempotent)."""
    command.upgrade(alembic_config(engine), "heads")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with Session(engine) as session, session.begin():
        yield session


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """Wait for this process's turn to write to the engine's SQLite file, and hold it.

    Enter it before the write transaction begins and leave it after the commit (``with
    writer_turn(engine), engine.begin(): ...``). Writers that do not take a turn still
    work, through SQLite's busy handler. Nothing to do on PostgreSQL or in-memory SQLite.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    # An open file description of its own per turn: flock excludes other threads of this
    # process as well as other processes, and the kernel drops it if the process dies.
    fd = os.open(f"{database}.writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def lost_race_raises(conflict: Exception) -> Iterator[None]:
    """Raise ``conflict`` instead of the database's error when the writes inside lost a race
    to a concurrent transaction (a unique violation; on PostgreSQL a serialization failure or
    a deadlock): the caller's whole transaction was rolled back, so retrying it is safe.
    Other database errors pass unchanged."""
    try:
        yield
    except IntegrityError as exc:
        raise conflict from exc
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            raise conflict from exc
        raise
