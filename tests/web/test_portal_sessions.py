"""The portal's session cookie: signed, expiring, never a secret; shared by API replicas that
share ``MEDTRACE_SESSION_SECRET``; ``Secure`` when the public URL is HTTPS."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Response
from sqlmodel import Session

from medtrace.models import Role
from medtrace.services.registry import create_participant
from medtrace.web import sessions
from medtrace.web.sessions import PortalSession
from support.live import LiveServer, start_server

SECRET = "s" * 64


def test_a_session_survives_its_round_trip_and_nothing_else_does() -> None:
    session = PortalSession.begin(user_id=7, password="f" * 32)
    value = sessions.encode(session, SECRET)
    payload, mac = value.split(".")
    expired = dataclasses.replace(session, expires=int(time.time()) - 1)

    assert sessions.decode(value, SECRET) == session
    assert sessions.decode(value, "another secret") is None
    assert sessions.decode(f"{payload}x.{mac}", SECRET) is None
    assert sessions.decode(sessions.encode(expired, SECRET), SECRET) is None
    assert sessions.decode("", SECRET) is None and sessions.decode("a.b.c", SECRET) is None
    assert sessions.csrf_matches(session, session.csrf)
    assert not sessions.csrf_matches(session, session.csrf[:-1] + "x")
    assert not sessions.csrf_matches(None, session.csrf)


def test_each_log_in_gets_a_new_csrf_token() -> None:
    assert PortalSession.begin(user_id=1).csrf != PortalSession.begin(user_id=1).csrf


@pytest.mark.parametrize("secure", [True, False])
def test_the_cookie_is_secure_when_asked(secure: bool) -> None:
    response = Response()
    sessions.store(response, PortalSession(), SECRET, secure=secure)

    cookie = response.headers["set-cookie"]
    assert ("Secure" in cookie) is secure
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie


def _cookie(response: httpx.Response) -> str:
    """The ``name=value`` of the session cookie a response sets."""
    return response.headers["set-cookie"].split(";")[0]


@pytest.fixture
def replicas(fresh_database_url: str, tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Two API processes on one database with one session secret and an HTTPS public URL."""
    env = {"MEDTRACE_SESSION_SECRET": SECRET, "MEDTRACE_PUBLIC_URL": "https://portal.example"}
    first = start_server(database_url=fresh_database_url, data_dir=tmp_path / "a", env=env)
    try:
        second = start_server(
            database_url=fresh_database_url,
            data_dir=tmp_path / "b",
            env={**env, "MEDTRACE_RUN_SEQUENCER": "false"},
        )
        try:
            yield [first, second]
        finally:
            second.stop()
    finally:
        first.stop()


def test_replicas_sharing_the_secret_share_sessions(replicas: list[LiveServer]) -> None:
    first, second = replicas
    with Session(first.engine) as session:
        token = create_participant(
            session=session, gln="9529012000002", name="Ruijin", role=Role.PHARMACY
        ).token
    # the cookie is Secure, so it is sent by hand over this test's plain HTTP
    form = httpx.get(first.url + "/portal/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    logged_in = httpx.post(
        first.url + "/portal/login",
        data={"csrf": csrf.group(1), "token": token},
        headers={"Cookie": _cookie(form)},
    )
    cookie = _cookie(logged_in).removeprefix("portal_session=")

    on_the_other = httpx.get(second.url + "/portal", cookies={"portal_session": cookie})

    assert logged_in.status_code == 303, logged_in.text
    assert "Secure" in logged_in.headers["set-cookie"], "the public URL is HTTPS"
    assert on_the_other.status_code == 200 and "Ruijin" in on_the_other.text
