"""Under steady load, every fault of issue 11 loses and doubles nothing acknowledged.

A small run of the harness in tests/support/faults.py (one round, a light load) so that CI
stays within minutes; ``tests/ops/faults.py --rounds 3`` runs the bigger one recorded in
BENCHMARKS.md.
"""

from __future__ import annotations

import os
import shutil

import pytest

from support.faults import FAULTS, Load, Tally, run_rounds
from support.postgres import postgres_bin

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.mqtt]


def test_no_fault_loses_or_doubles_anything_acknowledged() -> None:
    missing = [
        name
        for name, found in (
            ("PostgreSQL server", postgres_bin()),
            ("mosquitto", shutil.which("mosquitto")),
        )
        if found is None
    ]
    if missing:
        if os.environ.get("MEDTRACE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"missing {', '.join(missing)} (MEDTRACE_REQUIRE_POSTGRES=1)")
        pytest.skip(f"missing {', '.join(missing)}")
    light = Load(stations=2, batch=3, sensors=3, rate=5, before=2, after=3)
    tallies: list[Tally] = run_rounds(1, light, report=lambda _: None)
    assert [t.fault for t in tallies] == list(FAULTS)
    for tally in tallies:
        assert tally.events_acknowledged > 0 and tally.readings_acknowledged > 0, tally
        assert tally.clean, tally
    killed_api = tallies[FAULTS.index("kill api")]
    assert killed_api.failed_passes > 0, "the stations met the dead replica and sent again"
