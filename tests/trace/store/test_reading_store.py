"""The lookup of relayed readings by (sensor, seq), across more sensors than one query asks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, insert
from sqlmodel import Session

from medtrace.models.iot import Reading
from medtrace.store.readings import known_readings


def test_known_readings_finds_exactly_the_captured_keys_of_many_sensors() -> None:
    engine = create_engine("sqlite://")
    Reading.__table__.create(engine)  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC)
    captured = [(f"fridge-{n}", seq) for n in range(250) for seq in (1, 2)]
    rows = [
        {
            "sensor_id": sensor_id,
            "seq": seq,
            "taken_at": now,
            "temperature_c": 5.0,
            "digest": f"{sensor_id}/{seq}",
            "leaf_index": index,
            "recorded_at": now,
        }
        for index, (sensor_id, seq) in enumerate(captured)
    ]
    with Session(engine) as session:
        session.execute(insert(Reading), rows)
        asked = [(f"fridge-{n}", seq) for n in range(300) for seq in (2, 3)]
        found = known_readings(session=session, keys=asked)
    expected = {
        (s, q): (f"{s}/{q}", captured.index((s, q))) for s, q in asked if (s, q) in captured
    }
    assert found == expected
    assert len(found) == 250  # seq 2 of the 250 captured sensors, across three queries
