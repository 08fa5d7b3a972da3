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
from contextlib import contextmanager
from functools import cache
from pathlib import Path

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


@contextmanager
def _postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; its SQLAlchemy URL."""
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("MEDTRACE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{problem} (MEDTRACE_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    name = f"medtrace_test_{secrets.token_hex(6)}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(_admin_url()).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'medtrace.db'}"
    else:
        with _postgres_database() as url:
            yield url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database on each backend, shared by one test module: SQLite, PostgreSQL."""
    with _database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend for one test alone."""
    with _database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Settings (``MEDTRACE_*``) of the module's ``server``; a module overrides it to change
    them."""
    return {}


@pytest.fixture(scope="module")
def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]
) -> Iterator[LiveServer]:
    """A real ``medtrace serve`` process on a free port, on each backend (one per module)."""
    live = start_server(
        database_url=database_url, data_dir=tmp_path_factory.mktemp("data"), env=server_env
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def chain(server: LiveServer) -> Iterator[Chain]:
    """A manufacturer, a distributor and a pharmacy, each with a registered station."""
    with make_chain(server) as built:
        yield built
