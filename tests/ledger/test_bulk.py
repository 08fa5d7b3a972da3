"""Bulk inserts read back exactly as Core inserts of the same values, on both databases."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Enum,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    select,
)

from medtrace.db import create_db_engine
from medtrace.ledger.bulk import insert_rows


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


metadata = MetaData()
things = Table(
    "bulk_things",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(40)),
    Column("at", DateTime(timezone=True)),
    Column("flag", Boolean),
    Column("blob", LargeBinary),
    Column(
        "colour",
        Enum(Colour, native_enum=False, values_callable=lambda e: [m.value for m in e]),
    ),
)

WHEN = dt.datetime(2026, 12, 2, 6, 30, 15, 123456, tzinfo=dt.UTC)
VALUES = [
    ("plain", WHEN, True, b"\x00\x01\xff", "red"),
    ("it's \\ tab\t and newline\n", WHEN + dt.timedelta(days=1), False, b"", "blue"),
    ("中文", None, None, None, None),
]
COLUMNS = ("id", "name", "at", "flag", "blob", "colour")


@pytest.fixture
def engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(fresh_database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_bulk_rows_read_back_as_core_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(things),
            [dict(zip(COLUMNS, (n, *row), strict=True)) for n, row in enumerate(VALUES)],
        )
        insert_rows(conn, things, COLUMNS, [(100 + n, *row) for n, row in enumerate(VALUES)])
    with engine.connect() as conn:
        rows = conn.execute(select(things).order_by(things.c.id)).all()
    core, bulk = rows[: len(VALUES)], rows[len(VALUES) :]
    assert [tuple(r)[1:] for r in bulk] == [tuple(r)[1:] for r in core]
    assert bulk[0].name == "plain" and bulk[0].flag is True and bulk[0].blob == b"\x00\x01\xff"
    assert bulk[0].at.replace(tzinfo=dt.UTC) == WHEN  # SQLite reads back naive UTC
    assert bulk[1].name == VALUES[1][0] and bulk[1].colour is Colour.BLUE


def test_a_time_filter_sees_bulk_rows_as_core_rows(engine: Engine) -> None:
    """SQLite compares times as text: a bulk row must be written in SQLAlchemy's format."""
    with engine.begin() as conn:
        insert_rows(conn, things, COLUMNS, [(1, *VALUES[0]), (2, *VALUES[1])])
    with engine.connect() as conn:
        later = conn.execute(select(things.c.id).where(things.c.at > WHEN)).scalars().all()
    assert later == [2]
