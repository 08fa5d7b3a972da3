"""What a station knows of a unit: the server's last answer, and the state it falls back on
offline (the words and signals are ``medtrace.protocol.verdicts``).

Offline, the station cannot ask: it shows the last answer it got for that unit, saying so and
when that was, and re-checks the expiry the pack's own code carries against today's date.
Those answers live beside the outbox in the station's SQLite file.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from medtrace.protocol.verdicts import UNCHECKED


@dataclass(frozen=True)
class UnitStatus:
    """What the server said of a unit, and when: the basis of a verdict shown at a station."""

    verdict: str
    reasons: list[str]
    state: str | None
    holder_gln: str | None
    expiry: dt.date | None
    checked_at: dt.datetime
    live: bool
    """True when the server answered just now; False for the last known state, offline."""
    gtin: str | None = None
    """The GTIN the unit is recorded under (what a China drug code maps to)."""

    @classmethod
    def from_answer(cls, answer: dict[str, Any], now: dt.datetime) -> UnitStatus:
        """Read the verify JSON of ``GET /01/…`` (``VerifyPublic``) or of a case or pallet,
        ``GET /00/…`` (its ``container`` has a state and a holder, no expiry)."""
        unit = answer.get("unit") or answer.get("container") or {}
        holder = unit.get("holder") or {}
        expiry = unit.get("expiry")
        return cls(
            verdict=str(answer["verdict"]),
            reasons=[str(r) for r in answer.get("reasons", [])],
            state=unit.get("state"),
            holder_gln=holder.get("gln"),
            expiry=dt.date.fromisoformat(expiry) if expiry else None,
            checked_at=now,
            live=True,
            gtin=unit.get("gtin"),
        )

    def as_of(self, today: dt.date) -> UnitStatus:
        """This status re-read today: a unit known genuine (or not known at all, by the
        expiry printed on its pack) may have expired since."""
        unexpired = self.verdict in ("genuine", UNCHECKED)
        if unexpired and self.expiry is not None and self.expiry < today:
            return replace(self, verdict="expired", reasons=[f"expired on {self.expiry}"])
        return self


_SCHEMA = """
CREATE TABLE IF NOT EXISTS last_known (
    unit TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    checked_at TEXT NOT NULL
);
"""


class LastKnown:
    """The last verify answer the station got for each unit, for verdicts while offline."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def remember(self, unit: str, status: UnitStatus) -> None:
        """Keep ``status`` as the latest known for ``unit`` (a key such as ``/01/…/21/…``)."""
        answer = {
            "verdict": status.verdict,
            "reasons": status.reasons,
            "state": status.state,
            "holder_gln": status.holder_gln,
            "expiry": status.expiry.isoformat() if status.expiry else None,
            "gtin": status.gtin,
        }
        self._db.execute(
            "INSERT OR REPLACE INTO last_known (unit, answer, checked_at) VALUES (?, ?, ?)",
            (unit, json.dumps(answer), status.checked_at.isoformat()),
        )

    def lookup(self, unit: str) -> UnitStatus | None:
        """The last status known for ``unit``, marked as not live; None if never seen."""
        row = self._db.execute(
            "SELECT answer, checked_at FROM last_known WHERE unit = ?", (unit,)
        ).fetchone()
        if row is None:
            return None
        answer = json.loads(row[0])
        return UnitStatus(
            verdict=answer["verdict"],
            reasons=answer["reasons"],
            state=answer["state"],
            holder_gln=answer["holder_gln"],
            expiry=dt.date.fromisoformat(answer["expiry"]) if answer["expiry"] else None,
            checked_at=dt.datetime.fromisoformat(row[1]),
            live=False,
            gtin=answer.get("gtin"),
        )
