"""Shared fixtures: real databases and a real server process.

PostgreSQL tests run against the server at ``MEDTRACE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), each in a fresh database created for the test
and dropped after it. When the server is unreachable they are skipped loudly (the report
header says so); with ``MEDTRACE_REQUIRE_POSTGRES=1``, as ``.ci/run`` sets, they fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from functools import cache

import psycopg
import pytest
from sqlalchemy.engine import make_url

from support.chain import Chain, make_chain
from support.live import LiveServer, start_server

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _admin_url() -> str:
    return os.environ.get("MEDTRACE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@cache
def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(_admin_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {_admin_url()} is unreachable: {str(exc).strip()}"


def pytest_report_header() -> list[str]:
    problem = _postgres_problem()
    if problem is None:
        return [f"postgres: {_admin_url()}"]
    return [f"!!! {problem} -- PostgreSQL tests will be SKIPPED !!!"]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test module; its SQLAlchemy URL."""
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("MEDTRACE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{problem} (MEDTRACE_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    name = f"medtrace_test_{secrets.token_hex(6)}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(_admin_url()).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database on each backend, per test module: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'medtrace.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real ``medtrace serve`` process on a free port, on each backend (one per module)."""
    live = start_server(database_url=database_url, data_dir=tmp_path_factory.mktemp("data"))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def chain(server: LiveServer) -> Iterator[Chain]:
    """A manufacturer, a distributor and a pharmacy, each with a registered station."""
    with make_chain(server) as built:
        yield built
