"""Migration 0018_epcis: the table of EPCIS events as captured appears on upgrade (on both
backends) and goes on downgrade, leaving the events and the ledger as they were."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from medtrace.db import alembic_config, create_db_engine, upgrade_schema


def test_the_epcis_events_table_comes_and_goes(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    config = alembic_config(engine)
    command.upgrade(config, "0017")
    assert "epcis_events" not in inspect(engine).get_table_names()

    upgrade_schema(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("epcis_events")}
    assert columns == {"event_id", "participant_id", "digest", "document", "captured_at"}

    command.downgrade(config, "0017")
    tables = inspect(engine).get_table_names()
    assert "epcis_events" not in tables and "events" in tables
    engine.dispose()
