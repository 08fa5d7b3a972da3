"""Migration 0014: public verifications recorded one row per request become counts per unit,
place and minute, and back, with no request lost either way."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import column as col
from sqlalchemy import func, insert, select, table

from medtrace.db import alembic_config, create_db_engine, upgrade_schema
from medtrace.models.suspects import PublicVerificationCount

NOON = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
REQUESTS = [  # (serial, place, seconds after noon)
    ("S1", "a", 1),
    ("S1", "a", 59),  # the same minute and place as the first
    ("S1", "a", 61),
    ("S1", "b", 5),
    ("S2", "a", 5),
]


def test_requests_become_minute_counts_and_back(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    config = alembic_config(engine)
    command.upgrade(config, "0008")
    old = table(
        "public_verifications",
        col("gtin"),
        col("serial"),
        col("place_hash"),
        col("verified_at"),
    )
    with engine.begin() as conn:
        conn.execute(
            insert(old),
            [
                {
                    "gtin": "09521234000112",
                    "serial": serial,
                    "place_hash": place,
                    "verified_at": NOON + dt.timedelta(seconds=seconds),
                }
                for serial, place, seconds in REQUESTS
            ],
        )
    upgrade_schema(engine)
    counts = PublicVerificationCount
    with engine.connect() as conn:
        rows = conn.execute(
            select(counts.serial, counts.place_hash, counts.minute, counts.count).order_by(
                counts.serial, counts.place_hash, counts.minute
            )
        ).all()
    assert [(s, p, m.replace(tzinfo=dt.UTC), n) for s, p, m, n in rows] == [
        ("S1", "a", NOON, 2),
        ("S1", "a", NOON + dt.timedelta(minutes=1), 1),
        ("S1", "b", NOON, 1),
        ("S2", "a", NOON, 1),
    ]
    command.downgrade(config, "0014-1")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(old)).scalar_one() == len(REQUESTS)
    engine.dispose()
