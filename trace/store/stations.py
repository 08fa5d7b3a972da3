"""Scan stations and their public keys."""

from __future__ import annotations

from sqlmodel import Session

from medtrace.models import Station


def get_station(*, session: Session, station_id: str) -> Station | None:
    """The station with this id."""
    return session.get(Station, station_id)


def add_station(*, session: Session, station: Station) -> Station:
    """Insert a station and flush."""
    session.add(station)
    session.flush()
    return station
