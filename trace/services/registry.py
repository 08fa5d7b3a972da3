"""Participants, API tokens and stations: who may sign and capture."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from medtrace.identifiers import parse_gln
from medtrace.keys import b64
from medtrace.models import Participant, Role, Station
from medtrace.schemas import StationCreate, StationPublic, decode_public_key
from medtrace.store import participants as participant_store
from medtrace.store import stations as station_store

_TOKEN_PREFIX = "mt_"


def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are 256-bit random, so a fast hash is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewParticipant:
    """A participant just created, with the only copy of its API token."""

    participant: Participant
    token: str


def create_participant(
    *,
    session: Session,
    gln: str,
    name: str,
    role: Role,
    city: str = "",
    company_prefix: str | None = None,
) -> NewParticipant:
    """Register a participant and issue its first API token (shown once, stored hashed)."""
    gln = parse_gln(gln)
    if role is Role.MANUFACTURER and not (company_prefix and company_prefix.isdigit()):
        raise InvalidInput("a manufacturer needs its GS1 company prefix", rule="participant.prefix")
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with session.begin():
            participant = participant_store.add_participant(
                session=session,
                participant=Participant(
                    gln=gln, name=name, role=role, city=city, company_prefix=company_prefix
                ),
            )
            assert participant.id is not None
            participant_store.add_token(
                session=session, participant_id=participant.id, token_hash=hash_token(token)
            )
    except IntegrityError as exc:
        raise Conflict(f"GLN {gln} is already registered", rule="participant.exists") from exc
    session.refresh(participant)
    return NewParticipant(participant=participant, token=token)


def authenticate(*, session: Session, token: str | None) -> Participant:
    """The participant a bearer token belongs to; ``Unauthenticated`` otherwise."""
    if not token:
        raise Unauthenticated("send 'Authorization: Bearer <API token>'", rule="auth.missing_token")
    participant = participant_store.get_participant_by_token_hash(
        session=session, token_hash=hash_token(token)
    )
    if participant is None:
        raise Unauthenticated("the API token is unknown or revoked", rule="auth.invalid_token")
    return participant


def station_public(station: Station, participant: Participant) -> StationPublic:
    """The public view of a station."""
    return StationPublic(
        station_id=station.station_id,
        participant=participant.gln,
        public_key=b64(station.public_key),
        active=station.active,
    )


def register_station(
    *, session: Session, participant: Participant, station_in: StationCreate
) -> StationPublic:
    """Register a scan station's public key for the authenticated participant."""
    public_key = decode_public_key(station_in.public_key)
    assert participant.id is not None
    try:
        with session.begin():
            station = station_store.add_station(
                session=session,
                station=Station(
                    station_id=station_in.station_id,
                    participant_id=participant.id,
                    public_key=public_key,
                ),
            )
    except IntegrityError as exc:
        raise Conflict(
            f"station {station_in.station_id!r} is already registered", rule="station.exists"
        ) from exc
    return station_public(station, participant)


def get_station(*, session: Session, station_id: str) -> StationPublic:
    """A station's public view; ``NotFound`` if it was never registered."""
    station = station_store.get_station(session=session, station_id=station_id)
    if station is None:
        raise NotFound(f"no station {station_id!r}", rule="station.unknown")
    participant = participant_store.get_participant(
        session=session, participant_id=station.participant_id
    )
    assert participant is not None
    return station_public(station, participant)
