"""Liveness and readiness, for load balancers, orchestrators and compose health checks.

``/healthz`` answers as long as the process serves requests. ``/readyz`` answers 200 only
when the database answers and its schema is at every migration head this code expects, so
a replica is not sent traffic before ``medtrace db upgrade`` has run or while the database
is away.
"""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from medtrace.api.deps import EngineDep
from medtrace.db import alembic_config

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(engine: EngineDep) -> JSONResponse:
    """The database answers and its schema is current."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    except SQLAlchemyError as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"},
            status_code=503,
        )
    if not _at_every_head(script, current):
        return JSONResponse(
            {"status": "unavailable", "reason": "schema is not current; run medtrace db upgrade"},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


def _at_every_head(script: ScriptDirectory, current: tuple[str, ...]) -> bool:
    """Every head of the code is applied: a current head or below one. (A revision another
    depends on, ``depends_on``, is not stamped as a head of its own once both are applied.)
    A revision the code does not know means a newer schema: not current either."""
    try:
        applied = {r.revision for r in script.iterate_revisions(current, "base") if r}
    except (RevisionError, CommandError):
        return False
    return set(script.get_heads()) <= applied
