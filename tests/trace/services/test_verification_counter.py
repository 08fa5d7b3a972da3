"""Public verifications counted in memory and written in batches (``VerificationCounter``)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from medtrace.db import create_db_engine
from medtrace.models.suspects import PublicVerificationCount
from medtrace.services.verifications import Verification, VerificationCounter

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def _engine(tmp_path: Path) -> Engine:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'counts.db'}")
    PublicVerificationCount.__table__.create(engine)  # type: ignore[attr-defined]
    return engine


def _written(engine: Engine) -> int:
    """How many requests the database holds."""
    total = func.coalesce(func.sum(PublicVerificationCount.count), 0)
    with engine.connect() as conn:
        return int(conn.execute(select(total)).scalar_one())


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(PublicVerificationCount)).scalar_one()


def _seen(place: str, minutes_ago: int = 0, serial: str = "S1") -> Verification:
    return Verification("09521234000112", serial, place, NOW - dt.timedelta(minutes=minutes_ago))


def test_a_tally_counts_what_is_written_and_what_is_pending_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    counter = VerificationCounter(engine)
    for verification in (_seen("a"), _seen("b"), _seen("a", 90), _seen("c", serial="S2")):
        counter.record(verification)

    def tally() -> dict[str, int]:
        with Session(engine) as session:
            since = NOW - dt.timedelta(hours=1)
            return dict(counter.by_place(session, gtin="09521234000112", serial="S1", since=since))

    assert _written(engine) == 0
    assert tally() == {"a": 1, "b": 1}  # pending only; the one 90 minutes ago is too old
    counter.flush()
    assert _written(engine) == 4
    assert tally() == {"a": 1, "b": 1}  # written now, and no longer pending
    counter.record(_seen("b"))
    assert tally() == {"a": 1, "b": 2}


def test_a_much_verified_pack_is_one_row_per_place_and_minute(
    fresh_database_url: str,
) -> None:
    """Counted per minute: 300 requests from two places over two minutes, written in three
    flushes by two processes' counters, are four rows, and every request is in the tally."""
    engine = create_db_engine(fresh_database_url)
    PublicVerificationCount.__table__.create(engine)  # type: ignore[attr-defined]
    first, second = VerificationCounter(engine), VerificationCounter(engine)
    for n in range(300):
        counter = first if n % 3 else second
        counter.record(_seen("a" if n % 2 else "b", minutes_ago=(n // 2) % 2))
        if n in (100, 200):
            first.flush()
            second.flush()
    second.flush()
    with Session(engine) as session:
        since = NOW - dt.timedelta(minutes=5)
        tally = first.by_place(session, gtin="09521234000112", serial="S1", since=since)
    assert tally == {"a": 150, "b": 150}  # the first counter's last ones are still pending
    first.flush()
    assert (_rows(engine), _written(engine)) == (4, 300)
    PublicVerificationCount.__table__.drop(engine)  # type: ignore[attr-defined]
    engine.dispose()


def test_the_writer_thread_writes_every_interval_and_once_more_when_stopped(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    counter = VerificationCounter(engine, interval=0.05)
    stop = threading.Event()
    writer = threading.Thread(target=counter.run, args=(stop,))
    writer.start()
    counter.record(_seen("a"))
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while _written(engine) < 1:
        assert dt.datetime.now() < deadline
    counter.record(_seen("b"))
    stop.set()
    writer.join(timeout=10)
    assert _written(engine) == 2


def test_counts_that_cannot_be_written_stay_pending(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    counter = VerificationCounter(engine)
    counter.record(_seen("a"))
    PublicVerificationCount.__table__.drop(engine)  # type: ignore[attr-defined]
    counter.flush()  # the table is gone: nothing written, nothing lost
    PublicVerificationCount.__table__.create(engine)  # type: ignore[attr-defined]
    counter.flush()
    assert _written(engine) == 1
