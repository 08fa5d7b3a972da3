"""Liveness and readiness, for load balancers, orchestrators and compose health checks.

``/healthz`` answers as long as the process serves requests. ``/readyz`` answers 200 only
when the database answers and its schema is at every migration head this code expects, so
a replica is not sent traffic before ``medtrace db upgrade`` has run or while the database
is away.
"""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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
    # the heads Alembic records: a revision another one depends on (``depends_on``) is not one
    script = ScriptDirectory.from_config(alembic_config(engine))
    expected = {revision.revision for revision in script.get_revisions("heads") if revision}
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"},
            status_code=503,
        )
    if current != expected:
        return JSONResponse(
            {"status": "unavailable", "reason": "schema is not current; run medtrace db upgrade"},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})
