"""Failed portal log-ins per subject (an account, a client network) and window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from medtrace.models import as_utc
from medtrace.models.portal import LoginFailure

_failures = LoginFailure.__table__  # type: ignore[attr-defined]


def current_failures(
    *, session: Session, subjects: Sequence[str], since: dt.datetime
) -> dict[str, tuple[int, dt.datetime]]:
    """The failures of each subject in a window begun at ``since`` or later, with the
    window's start; subjects with none are missing."""
    rows = session.exec(
        select(LoginFailure).where(
            LoginFailure.subject.in_(subjects),  # type: ignore[attr-defined]
            LoginFailure.window_start >= since,
        )
    )
    return {row.subject: (row.failures, as_utc(row.window_start)) for row in rows}


def add_failure(
    *, session: Session, subjects: Sequence[str], now: dt.datetime, since: dt.datetime
) -> None:
    """Count one failure for each subject: one more in its window, or the first of a new
    window (at ``now``) when its window began before ``since``. One upsert, so concurrent
    failures from several API processes all count."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_failures)
    expired = _failures.c.window_start < since
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[_failures.c.subject],
            set_={
                "failures": case((expired, 1), else_=_failures.c.failures + 1),
                "window_start": case((expired, now), else_=_failures.c.window_start),
            },
        ),
        [{"subject": subject, "failures": 1, "window_start": now} for subject in subjects],
    )


def clear_failures(*, session: Session, subject: str) -> None:
    """Forget a subject's failures (its account logged in)."""
    session.execute(delete(LoginFailure).where(LoginFailure.subject == subject))  # type: ignore[arg-type]
