"""Alembic migrations of medtrace's schema (the core's tables and the ledger's)."""
