"""Scan stations: registration by their participant, public lookup by anyone."""

from __future__ import annotations

from fastapi import APIRouter, status

from medtrace.api.deps import CurrentParticipant, SessionDep
from medtrace.schemas import StationCreate, StationPublic
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
    """A station's public key and status, to check the signatures it made."""
    return registry.get_station(session=session, station_id=station_id)
