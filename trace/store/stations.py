"""Scan stations and their public keys."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from medtrace.models import Station, StationKey


def get_station(*, session: Session, station_id: str) -> Station | None:
    """The station with this id."""
    return session.get(Station, station_id)


def get_stations(*, session: Session, station_ids: Iterable[str]) -> dict[str, Station]:
    """Stations by id, in one query (a capture batch checks all its stations at once)."""
    wanted = set(station_ids)
    rows = session.exec(select(Station).where(col(Station.station_id).in_(wanted)))
    return {s.station_id: s for s in rows}


def get_station_keys(
    *, session: Session, station_ids: Iterable[str]
) -> dict[str, list[StationKey]]:
    """Every key of each station, newest first, in one query."""
    wanted = set(station_ids)
    rows = session.exec(
        select(StationKey)
        .where(col(StationKey.station_id).in_(wanted))
        .order_by(col(StationKey.id).desc())
    )
    keys: dict[str, list[StationKey]] = {station_id: [] for station_id in wanted}
    for row in rows:
        keys[row.station_id].append(row)
    return keys


def add_station(*, session: Session, station: Station) -> Station:
    """Insert a station with its first key, and flush."""
    session.add(station)
    session.flush()
    session.add(
        StationKey(
            station_id=station.station_id,
            public_key=station.public_key,
            valid_from=station.created_at,
        )
    )
    session.flush()
    return station


def add_station_key(*, session: Session, key: StationKey) -> StationKey:
    """Insert a station's new key and flush."""
    session.add(key)
    session.flush()
    return key
