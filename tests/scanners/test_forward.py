"""Store and forward against a real server that goes away: nothing lost, nothing doubled."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from medtrace.demo import GTIN, PARTICIPANTS, Enrolled, enrol
from medtrace.models import Event, Role
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import ServerUnreachable, StationRefused
from medtrace.scanners.forward import forward, forward_until_settled
from medtrace.scanners.outbox import Outbox, Status
from medtrace.scanners.station import Station
from support.chain import EXPIRY, LOT, new_serial
from support.live import LiveServer, start_server

MAKER = next(p for p in PARTICIPANTS if p.role is Role.MANUFACTURER)


@pytest.fixture
def live(fresh_database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server of our own, which the tests stop, kill and restart on the same data."""
    server = start_server(database_url=fresh_database_url, data_dir=tmp_path / "server")
    yield server
    server.stop()


@pytest.fixture
def maker(live: LiveServer) -> Iterator[Enrolled]:
    """The manufacturer with its station, enrolled on the test's own server."""
    member = enrol(live.engine, MAKER, Ed25519PrivateKey.generate(), live.url)
    yield member
    member.api.close()


def restart(server: LiveServer) -> LiveServer:
    """The same database and data directory served again (on a new port)."""
    server.stop()
    return start_server(database_url=server.database_url, data_dir=server.data_dir)


def scan(outbox: Outbox, station: Station, count: int) -> list[str]:
    """Commission ``count`` new units at the station: signed and stored, not yet sent."""
    serials = [new_serial() for _ in range(count)]
    for serial in serials:
        outbox.add(station.commission(GTIN, serial, lot=LOT, expiry=EXPIRY))
    return serials


def assert_exactly_once(server: LiveServer, outbox: Outbox, count: int) -> None:
    """Every envelope sent once, with the leaf index the server recorded for it."""
    entries = outbox.entries(Status.SENT, limit=count + 1)
    assert len(entries) == count
    with server.engine.connect() as conn:
        recorded = dict(
            conn.execute(
                select(Event.event_id, Event.leaf_index).where(
                    Event.event_id.in_([e.event_id for e in entries])  # type: ignore[attr-defined]
                )
            ).all()
        )
    assert recorded == {e.event_id: e.leaf_index for e in entries}
    assert outbox.counts()[Status.PENDING] == 0


@pytest.mark.slow
def test_an_hour_offline_then_everything_arrives_exactly_once(
    live: LiveServer, maker: Enrolled, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    live.stop()
    scan(outbox, maker.station, 5_000)
    offline = CaptureClient(live.url, maker.token, timeout=2)
    with pytest.raises(ServerUnreachable):
        forward(outbox, offline)
    assert outbox.counts()[Status.PENDING] == 5_000

    back = restart(live)
    try:
        with CaptureClient(back.url, maker.token) as online:
            done = forward_until_settled(outbox, online, give_up_after=60)
        assert (done.sent, done.refused) == (5_000, 0)
        assert_exactly_once(back, outbox, 5_000)
    finally:
        back.stop()


@pytest.mark.slow
def test_a_server_killed_mid_batch_loses_and_doubles_nothing(
    live: LiveServer, maker: Enrolled, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    scan(outbox, maker.station, 3_000)
    failures: list[BaseException] = []

    def send() -> None:
        try:
            forward(outbox, maker.api, batch_size=100)
        except ServerUnreachable as exc:
            failures.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    while outbox.counts()[Status.SENT] < 300 and sender.is_alive():
        threading.Event().wait(0.005)
    live.process.kill()
    sender.join(timeout=60)
    assert failures, "the kill must interrupt forwarding"
    assert 0 < outbox.counts()[Status.PENDING] < 3_000

    back = restart(live)
    try:
        with CaptureClient(back.url, maker.token) as client:
            forward_until_settled(outbox, client, give_up_after=60, batch_size=100)
        assert_exactly_once(back, outbox, 3_000)
    finally:
        back.stop()


def test_a_refused_scan_stays_visible_and_the_rest_goes_through(
    maker: Enrolled, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    station = maker.station
    twice = new_serial()
    outbox.add(station.commission(GTIN, twice, lot=LOT, expiry=EXPIRY))
    again = outbox.add(
        station.commission(GTIN, twice, lot=LOT, expiry=EXPIRY, event_time=an_hour_ago())
    )
    scan(outbox, station, 3)

    done = forward(outbox, maker.api)

    assert (done.sent, done.refused) == (4, 1)
    refused = outbox.get(again.event_id)
    assert refused is not None and refused.status is Status.REFUSED
    assert refused.rule == "custody.already_commissioned"
    assert refused.message and twice in refused.message


def test_a_probe_of_one_batch_of_one_sends_the_oldest_scan_alone(
    maker: Enrolled, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    oldest, *later = scan(outbox, maker.station, 3)

    probed = forward(outbox, maker.api, batch_size=1, batches=1)

    assert (probed.sent, probed.refused) == (1, 0)
    sent = outbox.entries(Status.SENT, limit=3)
    assert [entry.envelope["event"]["serial"] for entry in sent] == [oldest]
    assert outbox.counts()[Status.PENDING] == len(later)


def test_a_refused_station_stops_forwarding_and_keeps_every_scan(
    live: LiveServer, maker: Enrolled, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    ghost = Station("never-registered", maker.gln, Ed25519PrivateKey.generate())
    scan(outbox, ghost, 10)

    with pytest.raises(StationRefused, match="not registered") as refused:
        forward(outbox, maker.api)

    assert refused.value.rule == "station.unknown"
    assert "medtrace station register" in refused.value.diagnostics()
    assert outbox.counts() == {Status.PENDING: 10, Status.SENT: 0, Status.REFUSED: 0}


def an_hour_ago() -> str:
    """A time inside the replay window, other than now (so that the event differs)."""
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
