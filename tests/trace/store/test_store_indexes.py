"""A unit's history, a lot's units and their counts, a place's stock, a shipper's units in
transit, the places a participant stored at and the lookup of relayed readings are each one
indexed query, on SQLite and PostgreSQL (read from the databases' own query plans)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from medtrace.store.events import UNIT_HISTORY
from medtrace.store.readings import known_readings_query, stores_at_query
from medtrace.store.units import lot_summary_query, lot_units_query, moving_query, stock_query
from support.live import LiveServer

QUERIES = {
    "unit history": (UNIT_HISTORY.params(gtin="09521234000112", serial="S1"), "event_units"),
    "lot units": (lot_units_query(gtin="09521234000112", lot="LOT42"), "ix_units_gtin_lot"),
    "place stock": (
        stock_query(location_gln="9525678000004", holder_gln="9525678000004"),
        "ix_units_location",
    ),
    "lot summary": (lot_summary_query(gtin="09521234000112", lot="LOT42"), "ix_units_gtin_lot"),
    "in transit": (moving_query(holder_gln="9521234000006"), "ix_units_holder_gln"),
    "places stored at": (
        stores_at_query(gln="9525678000004", location="9525678000011"),
        "ix_events_store_place",
    ),
    "known readings": (
        known_readings_query({"fridge-1": [7, 8, 9], "truck-2": [1]}),
        "sensor_readings",
    ),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_the_query_uses_its_index(server: LiveServer, name: str) -> None:
    statement, index = QUERIES[name]
    engine = server.engine
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        else:
            # The tables are tiny here, so the planner would scan them; forbidding the scan
            # shows whether an index can answer the query at all.
            conn.execute(text("SET enable_seqscan = off"))
            plan = " ".join(str(row[0]) for row in conn.execute(text("EXPLAIN " + sql)))
    assert _uses(plan, index), plan
    assert not any(f"SCAN {table}" in plan for table in ("units", "sensor_readings", "events")), (
        plan
    )
    assert "Seq Scan" not in plan, plan


def _uses(plan: str, index: str) -> bool:
    names: dict[str, Any] = {
        # A place's stock names its holder too: either index reads only that participant's
        # units (SQLite without statistics picks the holder's).
        "ix_units_location": ("ix_units_location", "ix_units_holder_gln"),
        "event_units": ("event_units_pkey", "PRIMARY KEY", "sqlite_autoindex_event_units_1"),
        # On these tiny tables PostgreSQL may prefer (sensor_id, taken_at) to the primary key:
        # either finds a sensor's rows without scanning the others.
        "sensor_readings": (
            "sensor_readings_pkey",
            "sqlite_autoindex_sensor_readings_1",
            "ix_sensor_readings_time",
        ),
    }
    return any(n in plan for n in names.get(index, (index,)))
