"""Liveness and readiness, asked of real server processes."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from support.live import LiveServer, start_server


def test_a_running_server_is_live_and_ready(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}


def test_a_schema_behind_the_code_is_live_but_not_ready(tmp_path: Path) -> None:
    server = start_server(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path)
    try:
        with server.engine.begin() as conn:  # as if the lot records migration had not run
            conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0007'"))

        live, ready = httpx.get(f"{server.url}/healthz"), httpx.get(f"{server.url}/readyz")

        assert live.status_code == 200
        assert ready.status_code == 503
        assert "medtrace db upgrade" in ready.json()["reason"]
    finally:
        server.stop()
