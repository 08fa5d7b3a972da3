"""A small supply chain on a live server: the demo's three participants, one station each."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.demo import GTIN, PARTICIPANTS, Enrolled, enrol, random_serial, with_check_digit
from medtrace.models import Role
from medtrace.protocol.envelope import sign_event

from .live import LiveServer

EXPIRY = dt.date.today() + dt.timedelta(days=365)
LOT = "LOT42"
new_serial = random_serial


def ago(minutes: int) -> str:
    """An event time ``minutes`` before now, as a station stamps it."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def new_sscc() -> str:
    """A fresh SSCC in the manufacturer's company prefix (extension digit 3)."""
    return with_check_digit("39521234" + f"{secrets.randbelow(10**9):09d}")


def signed(member: Enrolled, kind: str, **fields: Any) -> dict[str, Any]:
    """An event of any type (a pack, a pallet's ship ...) signed now by ``member``'s station
    at its GLN."""
    station = member.station
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


@dataclass
class Chain:
    """The test chain and helpers to move units along it."""

    server: LiveServer
    maker: Enrolled
    hub: Enrolled
    pharmacy: Enrolled

    def commission(self, *serials: str) -> list[dict[str, Any]]:
        """Commission units (one batch)."""
        station = self.maker.station
        return self.maker.api.capture(
            [station.commission(GTIN, s, lot=LOT, expiry=EXPIRY) for s in serials]
        )

    def ship_to_hub(self, count: int) -> list[str]:
        """``count`` new units commissioned and shipped to the distributor, not yet received
        (in requests of at most 1 000 envelopes)."""
        serials = [new_serial() for _ in range(count)]
        maker = self.maker
        for start in range(0, count, 1_000):
            batch = serials[start : start + 1_000]
            self.commission(*batch)
            maker.api.capture([maker.station.ship(GTIN, s, to=self.hub.gln) for s in batch])
        return serials

    def to_pharmacy(self, *serials: str) -> None:
        """Commission units and move them to the pharmacy's stock."""
        maker, hub, pharmacy = self.maker, self.hub, self.pharmacy
        self.commission(*serials)
        maker.api.capture([maker.station.ship(GTIN, s, to=hub.gln) for s in serials])
        hub.api.capture([hub.station.receive(GTIN, s) for s in serials])
        hub.api.capture([hub.station.ship(GTIN, s, to=pharmacy.gln) for s in serials])
        pharmacy.api.capture([pharmacy.station.receive(GTIN, s) for s in serials])


@contextmanager
def make_chain(server: LiveServer) -> Iterator[Chain]:
    """Enrol the demo's participants and their stations on a live server."""
    members = {
        p.role: enrol(server.engine, p, Ed25519PrivateKey.generate(), server.url)
        for p in PARTICIPANTS
    }
    try:
        yield Chain(
            server, members[Role.MANUFACTURER], members[Role.DISTRIBUTOR], members[Role.PHARMACY]
        )
    finally:
        for member in members.values():
            member.api.close()
