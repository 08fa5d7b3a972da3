"""Scan stations: registration, key rotation and revocation by their participant; public
lookup (with the key history) by anyone."""

from __future__ import annotations

from fastapi import APIRouter, status

from medtrace.api.deps import CurrentParticipant, SessionDep
from medtrace.schemas.keys import KeyCreate, KeyRevoke
from medtrace.schemas.stations import StationCreate, StationPublic
from medtrace.services import registry

router = APIRouter(prefix="/api/v1/stations", tags=["stations"])


@router.post("", response_model=StationPublic, status_code=status.HTTP_201_CREATED)
def register_station(
    station_in: StationCreate, participant: CurrentParticipant, session: SessionDep
) -> StationPublic:
    """Register a station's Ed25519 public key for the calling participant."""
    return registry.register_station(
        session=session, participant=participant, station_in=station_in
    )


@router.get("/{station_id}", response_model=StationPublic)
def read_station(station_id: str, session: SessionDep) -> StationPublic:
    """A station's keys (newest first, each with its validity) and status, to check the
    signatures it made at any time."""
    return registry.get_station(session=session, station_id=station_id)


@router.post("/{station_id}/keys", response_model=StationPublic, status_code=201)
def rotate_station_key(
    station_id: str, key_in: KeyCreate, participant: CurrentParticipant, session: SessionDep
) -> StationPublic:
    """Rotate: the station's new key signs from now on; the old one only for events stamped
    before now."""
    return registry.rotate_station_key(
        session=session, participant=participant, station_id=station_id, key_in=key_in
    )


@router.post("/{station_id}/keys/revoke", response_model=StationPublic)
def revoke_station_keys(
    station_id: str, revoke: KeyRevoke, participant: CurrentParticipant, session: SessionDep
) -> StationPublic:
    """Revoke one key (or all): nothing it signed is accepted from now on, whatever its
    event time; what it signed before stays verifiable."""
    return registry.revoke_station_keys(
        session=session, participant=participant, station_id=station_id, revoke=revoke
    )
