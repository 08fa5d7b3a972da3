"""What a station shows after a scan, and the last known state it falls back on offline.

The server's verify answer says whether a unit can be trusted (``verdict``: genuine, expired,
recalled, quarantined, suspect, unknown; DESIGN.md "Verdicts and states"); the station adds
the check of its own action (the capture API's refusal rule). Both become one :class:`Signal`
for the person at the counter, with the reason and what to do next.

Offline, the station cannot ask: it shows the last answer it got for that unit, saying so and
when that was, and re-checks the expiry the pack's own code carries against today's date.
Those answers live beside the outbox in the station's SQLite file.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any


class Signal(StrEnum):
    """The word a station shows in colour after a scan."""

    OK = "OK"
    EXPIRED = "EXPIRED"
    RECALLED = "RECALLED"
    QUARANTINED = "QUARANTINED"
    SUSPECT = "SUSPECT"
    UNKNOWN = "UNKNOWN"
    NOT_FOR_THIS_PLACE = "NOT FOR THIS PLACE"
    REFUSED = "REFUSED"
    """The server refused the action for another rule (shown with that rule)."""
    UNCHECKED = "UNCHECKED"
    """Offline, and never seen at this station: nothing is known yet."""


#: The station's own verdict word for a unit it could not ask about and never saw.
UNCHECKED = "unchecked"


#: What to do next, for each signal but OK.
ADVICE = {
    Signal.EXPIRED: "Do not dispense or ship it; set it aside for destruction (mode destroy).",
    Signal.RECALLED: "Do not dispense or ship it; quarantine it and follow the recall notice.",
    Signal.QUARANTINED: "Held by quality assurance: do not move it until QA releases it.",
    Signal.SUSPECT: "Do not dispense it; keep the pack apart and report it to the regulator.",
    Signal.UNKNOWN: "This code was never commissioned: a possible counterfeit. Keep the pack "
    "apart and report it.",
    Signal.NOT_FOR_THIS_PLACE: "This pack is not yours to move here: check the delivery note "
    "and who holds it.",
    Signal.REFUSED: "The server refused this move: see the rule, fix the cause and scan again.",
    Signal.UNCHECKED: "Offline: this unit is checked when the scan is sent; do not dispense "
    "it until then.",
}

_BY_VERDICT = {
    "genuine": Signal.OK,
    "expired": Signal.EXPIRED,
    "recalled": Signal.RECALLED,
    "quarantined": Signal.QUARANTINED,
    "suspect": Signal.SUSPECT,
    "unknown": Signal.UNKNOWN,
    UNCHECKED: Signal.UNCHECKED,
}

#: Refusal rules of the capture API that a person reads as one of the signals.
_BY_RULE = {
    "custody.not_holder": Signal.NOT_FOR_THIS_PLACE,
    "custody.not_shipped_to_you": Signal.NOT_FOR_THIS_PLACE,
    "custody.wrong_location": Signal.NOT_FOR_THIS_PLACE,
    "custody.not_a_pharmacy": Signal.NOT_FOR_THIS_PLACE,
    "custody.unknown_unit": Signal.UNKNOWN,
    "custody.expired": Signal.EXPIRED,
    "custody.recalled": Signal.RECALLED,
    "custody.quarantined": Signal.QUARANTINED,
    "custody.suspect": Signal.SUSPECT,
}


def signal_of_verdict(verdict: str) -> Signal:
    """The signal of a server verdict (an unfamiliar one is treated as ``UNKNOWN``)."""
    return _BY_VERDICT.get(verdict, Signal.UNKNOWN)


def signal_of_rule(rule: str) -> Signal:
    """The signal of a capture refusal rule."""
    return _BY_RULE.get(rule, Signal.REFUSED)


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
        """Read the verify JSON of ``GET /01/…`` (``VerifyPublic``)."""
        unit = answer.get("unit") or {}
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
