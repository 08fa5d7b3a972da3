"""Migration 0018: the capture grants table is what the model says, on both backends, and
goes away and comes back cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from medtrace.db import alembic_config, create_db_engine, upgrade_schema
from medtrace.models.grants import CaptureGrant

TABLE = CaptureGrant.__tablename__


def _differences(engine_url: str) -> list[object]:
    """What autogenerate would change in the capture grants table to match the model."""
    engine = create_db_engine(engine_url)
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    return [d for d in found if TABLE in repr(d)]


def test_the_migrated_table_matches_the_model_and_downgrades(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    upgrade_schema(engine)
    assert TABLE in inspect(engine).get_table_names()
    assert _differences(fresh_database_url) == []

    command.downgrade(alembic_config(engine), "0018-1")
    assert TABLE not in inspect(engine).get_table_names()
    upgrade_schema(engine)
    assert TABLE in inspect(engine).get_table_names()
    engine.dispose()
