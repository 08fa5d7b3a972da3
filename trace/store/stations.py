"""Scan stations and their public keys."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from medtrace.models import Station


def get_station(*, session: Session, station_id: str) -> Station | None:
    """The station with this id."""
    return session.get(Station, station_id)


def get_stations(*, session: Session, station_ids: Iterable[str]) -> dict[str, Station]:
    """Stations by id, in one query (a capture batch checks all its stations at once)."""
    wanted = set(station_ids)
    rows = session.exec(select(Station).where(col(Station.station_id).in_(wanted)))
    return {s.station_id: s for s in rows}


def add_station(*, session: Session, station: Station) -> Station:
    """Insert a station and flush."""
    session.add(station)
    session.flush()
    return station
