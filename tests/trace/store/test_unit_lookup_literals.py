"""Batch lookups write serials into the SQL as literals (``unit_keys_in``): every character a
GS1 serial may carry (AI 21, set 82: quotes, percent signs, ...) and more must find exactly
its own unit, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from medtrace.custody import UnitKey
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.models import Unit
from medtrace.store.units import lock_units

GTIN = "09521234000112"
AWKWARD = ["a%sb", "x'1", "p%%q", "b\\s", 'q"q', "c%(x)s", "semi;--", "中文", "a b"]


def test_awkward_serials_find_their_own_units(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    upgrade_schema(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Unit),
            [
                {
                    "gtin": GTIN,
                    "serial": serial,
                    "lot": "L1",
                    "expiry": dt.date(2030, 1, 1),
                    "state": "commissioned",
                    "holder_gln": "9521234000006",
                    "location_gln": "9521234000006",
                    "quarantined": False,
                    "updated_at": now,
                }
                for serial in AWKWARD
            ],
        )
    wanted = [UnitKey(GTIN, s) for s in [*AWKWARD, "x'1' OR '1'='1", "missing"]]
    with engine.begin() as conn:
        found = lock_units(conn=conn, keys=wanted)
    assert sorted(key.serial for key in found if isinstance(key, UnitKey)) == sorted(AWKWARD)
    assert len(found) == len(AWKWARD)
    engine.dispose()
