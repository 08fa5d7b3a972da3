"""The station's outbox: every signed envelope is durable here before it is sent.

A local SQLite file (WAL, ``synchronous=FULL``): a scan is acknowledged to the person at the
station only once its envelope is on disk, so a crash, a power cut or an hour offline loses
nothing. Each entry is ``pending`` until the server acknowledges it (``sent``, with its leaf
index) or refuses it for a reason that retrying cannot change (``refused``, with the rule and
message, kept visible and never dropped).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from medtrace.protocol.envelope import event_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    envelope TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL,
    leaf_index INTEGER,
    units INTEGER,
    rule TEXT,
    message TEXT,
    settled_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, id);
"""
#: Columns added since the first outbox files were written, added to those files on open.
_ADDED_COLUMNS = {"units": "INTEGER"}


class Status(StrEnum):
    """Where an envelope stands."""

    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"


@dataclass(frozen=True)
class Entry:
    """One envelope in the outbox."""

    id: int
    event_id: str
    envelope: dict[str, Any]
    status: Status
    created_at: str
    leaf_index: int | None
    rule: str | None
    message: str | None
    units: int | None = None
    """How many units the server says the event moved (a case or pallet: all inside it)."""


@dataclass(frozen=True)
class Receipt:
    """The server's acknowledgement of one envelope."""

    event_id: str
    leaf_index: int
    units: int | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Outbox:
    """A station's durable queue of signed envelopes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        self._add_new_columns()

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def add(self, envelope: dict[str, Any]) -> Entry:
        """Store an envelope durably; the same event twice is stored once."""
        eid = event_id(envelope["event"])
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (event_id, envelope, created_at) VALUES (?, ?, ?)",
            (eid, json.dumps(envelope, ensure_ascii=False), _now()),
        )
        entry = self.get(eid)
        assert entry is not None
        return entry

    def get(self, eid: str) -> Entry | None:
        """The entry of an event id."""
        rows = self._select("WHERE event_id = ?", (eid,))
        return rows[0] if rows else None

    def pending(self, limit: int) -> list[Entry]:
        """The oldest pending envelopes, in scan order."""
        return self._select("WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,))

    def entries(self, status: Status | None = None, limit: int = 50) -> list[Entry]:
        """The newest entries, optionally of one status."""
        if status is None:
            return self._select("ORDER BY id DESC LIMIT ?", (limit,))
        return self._select("WHERE status = ? ORDER BY id DESC LIMIT ?", (status.value, limit))

    def counts(self) -> dict[Status, int]:
        """How many entries have each status."""
        rows = self._db.execute("SELECT status, count(*) FROM outbox GROUP BY status")
        found = {Status(status): int(n) for status, n in rows}
        return {status: found.get(status, 0) for status in Status}

    def mark_sent(self, receipts: Iterable[Receipt]) -> None:
        """Record the server's receipts in one transaction."""
        now = _now()
        with self._transaction():
            self._db.executemany(
                "UPDATE outbox SET status = 'sent', leaf_index = ?, units = ?, settled_at = ? "
                "WHERE event_id = ?",
                [(r.leaf_index, r.units, now, r.event_id) for r in receipts],
            )

    def oldest_pending(self) -> str | None:
        """When the oldest envelope still waiting was scanned (ISO 8601), if any waits."""
        row = self._db.execute("SELECT min(created_at) FROM outbox WHERE status = 'pending'")
        oldest: str | None = row.fetchone()[0]
        return oldest

    def mark_refused(self, eid: str, rule: str, message: str) -> None:
        """Keep a refused envelope visible with the server's reason."""
        self._db.execute(
            "UPDATE outbox SET status = 'refused', rule = ?, message = ?, settled_at = ? "
            "WHERE event_id = ?",
            (rule, message, _now(), eid),
        )

    def _select(self, where: str, params: Sequence[object]) -> list[Entry]:
        rows = self._db.execute(
            "SELECT id, event_id, envelope, status, created_at, leaf_index, rule, message, units "
            f"FROM outbox {where}",
            params,
        )
        return [
            Entry(r[0], r[1], json.loads(r[2]), Status(r[3]), r[4], r[5], r[6], r[7], r[8])
            for r in rows
        ]

    def _add_new_columns(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for name, sql_type in _ADDED_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {sql_type}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (the connection otherwise runs in autocommit mode)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
