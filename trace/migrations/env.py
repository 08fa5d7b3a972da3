"""Alembic environment: migrates the engine handed over by ``medtrace.db.upgrade_schema``.

Parts of the product may add migrations on their own branch from an earlier revision;
``upgrade_schema`` applies every head, and a merge revision joins branches when convenient.

For ``alembic revision --autogenerate`` during development, the engine is built from the
settings (``MEDTRACE_DATABASE_URL``).
"""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from sqlmodel import SQLModel

import medtrace.models
from medtrace import ledger
from medtrace.config import get_settings
from medtrace.db import create_db_engine

# Every module of medtrace.models registers its tables on SQLModel.metadata when imported.
for module in pkgutil.iter_modules(medtrace.models.__path__, "medtrace.models."):
    importlib.import_module(module.name)

target_metadata = [SQLModel.metadata, ledger.ledger_metadata]


def run_migrations() -> None:
    engine = context.config.attributes.get("engine") or create_db_engine(
        get_settings().resolved_database_url
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
