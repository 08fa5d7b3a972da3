"""Public verifications of dispensed packs, counted in memory and written in batches.

Every public verify of a dispensed pack is counted for the ``suspect.verified_after_dispense``
rule. Writing each in a transaction of its own cost a commit per page view and, on SQLite,
made the API processes queue for the one write lock: with two workers and four clients, the
99th percentile of the verify page went from 45 ms without that write to 130 ms with it
(BENCHMARKS.md). Here the counts wait in memory and are written together every
``interval`` seconds (and when the process stops); a tally adds those not written yet, so the
rule sees every verification this process answered. A crash loses at most one interval of
counts of a heuristic; it never loses an event. Requests are counted per unit, place and
minute (``PublicVerificationCount``), so that a tally reads one row per place and minute
however often the pack is verified.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from medtrace.store import suspects as suspect_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verification:
    """One public verification of a dispensed unit: when, and from which hashed place."""

    gtin: str
    serial: str
    place_hash: str
    verified_at: dt.datetime


class VerificationCounter:
    """Public verifications of dispensed units: recorded now, written in batches by ``run``."""

    def __init__(self, engine: Engine, *, interval: float = 0.5) -> None:
        self._engine = engine
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: Counter[suspect_store.MinuteKey] = Counter()

    def record(self, verification: Verification) -> None:
        """Count a verification in its minute; it is written with the next batch."""
        minute = _minute(verification.verified_at)
        with self._lock:
            self._pending[
                verification.gtin, verification.serial, minute, verification.place_hash
            ] += 1

    def by_place(
        self, session: Session, *, gtin: str, serial: str, since: dt.datetime
    ) -> Counter[str]:
        """The unit's verifications from the minute of ``since`` on, per hashed place:
        those written (by any process) and those of this process not written yet."""
        first = _minute(since)
        places = Counter(
            suspect_store.verifications_by_place(
                session=session, gtin=gtin, serial=serial, since=first
            )
        )
        with self._lock:
            for (g, s, minute, place), count in self._pending.items():
                if (g, s) == (gtin, serial) and minute >= first:
                    places[place] += count
        return places

    def flush(self) -> None:
        """Write the pending counts in one transaction; on a database error they stay
        pending for the next try."""
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return
        try:
            with self._engine.begin() as conn:
                suspect_store.add_verification_counts(conn=conn, counts=batch)
        except SQLAlchemyError:
            log.warning("could not write %d verification counts; retrying", batch.total())
            with self._lock:
                self._pending.update(batch)

    def run(self, stop: threading.Event) -> None:
        """Write the pending verifications every interval until ``stop``, then once more."""
        while not stop.wait(self._interval):
            self.flush()
        self.flush()


def _minute(at: dt.datetime) -> dt.datetime:
    """The minute ``at`` falls in (its start)."""
    return at.replace(second=0, microsecond=0)
