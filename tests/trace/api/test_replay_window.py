"""Replays: a signed event too old or too far ahead is refused, unless a station outbox flags
its batch as offline catch-up; a retry stays idempotent at any age. Real servers, both
backends."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.demo import GTIN, PARTICIPANTS, Enrolled, enrol
from medtrace.models import Role
from medtrace.scanners.forward import forward
from medtrace.scanners.outbox import Outbox, Status
from medtrace.scanners.station import Station
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.live import start_server

MAKER = next(p for p in PARTICIPANTS if p.role is Role.MANUFACTURER)


def stamped(ago: dt.timedelta) -> str:
    moment = dt.datetime.now(dt.UTC) - ago
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def commission(station: Station, ago: dt.timedelta) -> dict[str, Any]:
    return station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time=stamped(ago))


def post(chain: Chain, envelope: dict[str, Any], *, catch_up: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {chain.maker.token}"}
    if catch_up:
        headers["Medtrace-Offline-Catch-Up"] = "true"
    return httpx.post(f"{chain.server.url}/api/v1/capture", json=[envelope], headers=headers)


@pytest.mark.parametrize(
    ("ago", "catch_up", "status", "rule"),
    [
        (dt.timedelta(hours=25), False, 422, "capture.stale_event"),
        (dt.timedelta(hours=25), True, 201, None),
        (dt.timedelta(days=31), True, 422, "capture.stale_event"),
        (dt.timedelta(hours=-1), False, 422, "capture.future_event"),
        (dt.timedelta(hours=-1), True, 422, "capture.future_event"),
        (dt.timedelta(hours=23), False, 201, None),
    ],
)
def test_the_default_windows_bound_the_event_time(
    chain: Chain, ago: dt.timedelta, catch_up: bool, status: int, rule: str | None
) -> None:
    before = chain.server.snapshot()

    response = post(chain, commission(chain.maker.station, ago), catch_up=catch_up)

    assert response.status_code == status, response.text
    if rule is not None:
        assert response.json()["detail"]["rule"] == rule
        assert response.json()["detail"]["index"] == 0
        assert chain.server.snapshot() == before


def test_the_catch_up_flag_does_not_lift_the_other_rules(chain: Chain) -> None:
    envelope = commission(chain.maker.station, dt.timedelta(hours=30))
    envelope["event"]["serial"] = new_serial()  # the signature no longer covers the event

    response = post(chain, envelope, catch_up=True)

    assert response.status_code == 403
    assert response.json()["detail"]["rule"] == "signature.invalid"


@pytest.fixture
def short_window(fresh_database_url: str, tmp_path: Path) -> Iterator[Enrolled]:
    """A server whose replay window is 2 s and catch-up window 60 s, and its manufacturer."""
    server = start_server(
        database_url=fresh_database_url,
        data_dir=tmp_path / "server",
        env={"MEDTRACE_REPLAY_WINDOW": "2", "MEDTRACE_CATCH_UP_WINDOW": "60"},
    )
    member = enrol(server.engine, MAKER, Ed25519PrivateKey.generate(), server.url)
    yield member
    member.api.close()
    server.stop()


def test_a_retry_older_than_the_window_still_gets_its_first_receipt(
    short_window: Enrolled,
) -> None:
    maker = short_window
    envelope = commission(maker.station, dt.timedelta(0))
    first = maker.api.capture([envelope])
    time.sleep(2.5)

    again = maker.api.capture([envelope])

    assert again == [{**first[0], "duplicate": True, "units": None}]  # the count: first receipt


def test_the_outbox_flags_what_it_held_while_offline(
    short_window: Enrolled, tmp_path: Path
) -> None:
    maker = short_window
    outbox = Outbox(tmp_path / "outbox.db")
    held = outbox.add(commission(maker.station, dt.timedelta(seconds=30)))
    with sqlite3.connect(tmp_path / "outbox.db") as db:  # it waited two hours for the network
        queued = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat(timespec="seconds")
        db.execute("UPDATE outbox SET created_at = ? WHERE id = ?", (queued, held.id))

    assert forward(outbox, maker.api).sent == 1

    stale = outbox.add(commission(maker.station, dt.timedelta(seconds=30)))  # queued just now
    assert forward(outbox, maker.api).refused == 1
    refused = outbox.get(stale.event_id)
    assert refused is not None
    assert (refused.status, refused.rule) == (Status.REFUSED, "capture.stale_event")
    outbox.close()
