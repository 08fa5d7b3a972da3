"""Roles that must be single elect a leader: two processes, one runs the jobs; kill it and
the other takes over."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from medtrace.demo import GTIN
from medtrace.models.alerts import Alert
from support.chain import make_chain, new_serial
from support.live import MEDTRACE, RoleProcess, start_role, start_server

LEADING = "scheduler: leading"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_two_schedulers_run_the_jobs_once_and_a_standby_takes_over(
    fresh_database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url=fresh_database_url, data_dir=tmp_path / "api")
    schedulers: list[RoleProcess] = []
    try:
        with make_chain(server) as chain:
            serial = new_serial()
            soon = dt.date.today() + dt.timedelta(days=3)
            chain.maker.api.capture(
                [chain.maker.station.commission(GTIN, serial, lot="SOON", expiry=soon)]
            )
        fast = {"MEDTRACE_EXPIRY_CHECK_INTERVAL": "0.5", "MEDTRACE_WEBHOOK_INTERVAL": "0.5"}
        schedulers = [
            start_role(
                "scheduler",
                database_url=fresh_database_url,
                data_dir=tmp_path / "scheduler",
                name=f"scheduler-{i}",
                env=fast,
            )
            for i in range(2)
        ]

        def alerts() -> list[Alert]:
            with Session(server.engine) as session:
                return list(session.exec(select(Alert)).all())

        wait_for(lambda: len(alerts()) == 1, 30, "the expiry job to raise its alert")
        time.sleep(2)  # both schedulers have had time to try to lead
        leaders = [s for s in schedulers if LEADING in s.log()]
        assert len(leaders) == 1, [s.log() for s in schedulers]

        leaders[0].process.kill()
        standby = next(s for s in schedulers if s is not leaders[0])
        wait_for(lambda: LEADING in standby.log(), 15, "the standby to take over")
        assert len(alerts()) == 1, "the alert is raised once, whoever leads"
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        server.stop()


@pytest.mark.parametrize(
    ("role", "setting"),
    [("bridge", "MEDTRACE_BRIDGE_TOKEN"), ("witness", "MEDTRACE_WITNESS_LOG_KEYS")],
)
def test_a_role_missing_its_settings_says_which_and_exits_1(
    role: str, setting: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDTRACE_")}
    result = subprocess.run(
        [str(MEDTRACE), "serve", "--role", role],
        env={**env, "MEDTRACE_DATA_DIR": str(tmp_path), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert setting in result.stderr
