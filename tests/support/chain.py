"""A small supply chain on a live server: three participants, one station each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from medtrace.demo import GTIN, PARTICIPANTS, random_serial
from medtrace.models import Role
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.station import Station
from medtrace.services.registry import create_participant

from .live import LiveServer

EXPIRY = dt.date.today() + dt.timedelta(days=365)
LOT = "LOT42"


@dataclass
class Member:
    """A participant of the test chain: its station, its API client and token."""

    gln: str
    role: Role
    station: Station
    api: CaptureClient
    token: str


@dataclass
class Chain:
    """The test chain and helpers to move units along it."""

    server: LiveServer
    maker: Member
    hub: Member
    pharmacy: Member

    def commission(self, *serials: str) -> list[dict[str, Any]]:
        """Commission units (one batch)."""
        envelopes = [
            self.maker.station.commission(GTIN, s, lot=LOT, expiry=EXPIRY) for s in serials
        ]
        return self.maker.api.capture(envelopes)

    def to_pharmacy(self, *serials: str) -> None:
        """Commission units and move them to the pharmacy's stock."""
        self.commission(*serials)
        self.maker.api.capture([self.maker.station.ship(GTIN, s, to=self.hub.gln) for s in serials])
        self.hub.api.capture([self.hub.station.receive(GTIN, s) for s in serials])
        self.hub.api.capture(
            [self.hub.station.ship(GTIN, s, to=self.pharmacy.gln) for s in serials]
        )
        self.pharmacy.api.capture([self.pharmacy.station.receive(GTIN, s) for s in serials])


@contextmanager
def make_chain(server: LiveServer) -> Iterator[Chain]:
    """Register the demo's participants (as the operator) and their stations (over HTTP)."""
    members: dict[Role, Member] = {}
    for p in PARTICIPANTS:
        with Session(server.engine) as session:
            created = create_participant(
                session=session,
                gln=p.gln,
                name=p.name,
                role=p.role,
                city=p.city,
                company_prefix=p.company_prefix,
            )
        station = Station(f"{p.role.value}-1", p.gln, Ed25519PrivateKey.generate())
        api = CaptureClient(server.url, created.token)
        api.register_station(station.station_id, station.public_key)
        members[p.role] = Member(p.gln, p.role, station, api, created.token)
    try:
        yield Chain(
            server, members[Role.MANUFACTURER], members[Role.DISTRIBUTOR], members[Role.PHARMACY]
        )
    finally:
        for member in members.values():
            member.api.close()


new_serial = random_serial
