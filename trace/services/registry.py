"""Participants, API tokens and stations: who may sign and capture."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace import key_history
from medtrace.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    SignatureRejected,
    Unauthenticated,
)
from medtrace.key_history import key_public
from medtrace.models import Participant, Role, Station, StationKey, utcnow
from medtrace.protocol.identifiers import parse_gln
from medtrace.protocol.keys import b64
from medtrace.schemas.keys import KeyCreate, KeyRevoke, decode_new_public_key, decode_public_key
from medtrace.schemas.stations import StationCreate, StationPublic
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
    token = _new_token()
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


def _new_token() -> str:
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(*, session: Session, gln: str) -> str:
    """A new API token for the participant with this GLN (shown once, stored hashed); its
    other tokens stay valid until revoked, so a client can switch without downtime."""
    token = _new_token()
    with session.begin():
        participant = _participant_by_gln(session, gln)
        assert participant.id is not None
        participant_store.add_token(
            session=session, participant_id=participant.id, token_hash=hash_token(token)
        )
    return token


def revoke_token(*, session: Session, token: str) -> None:
    """Revoke one API token: every request carrying it is refused from now on."""
    with session.begin():
        count = participant_store.revoke_tokens(
            session=session, revoked_at=utcnow(), token_hash=hash_token(token)
        )
    if count == 0:
        raise NotFound("no such API token, or it is already revoked", rule="auth.unknown_token")


def revoke_all_tokens(*, session: Session, gln: str) -> int:
    """Revoke every API token of the participant with this GLN; return how many."""
    with session.begin():
        participant = _participant_by_gln(session, gln)
        return participant_store.revoke_tokens(
            session=session, revoked_at=utcnow(), participant_id=participant.id
        )


def _participant_by_gln(session: Session, gln: str) -> Participant:
    participant = participant_store.get_participant_by_gln(session=session, gln=parse_gln(gln))
    if participant is None:
        raise NotFound(f"no participant with GLN {gln}", rule="participant.unknown")
    return participant


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


def station_public(
    station: Station, participant: Participant, keys: Sequence[StationKey]
) -> StationPublic:
    """The public view of a station, with its key history (newest first)."""
    return StationPublic(
        station_id=station.station_id,
        participant=participant.gln,
        public_key=b64(station.public_key),
        active=station.active,
        keys=[key_public(key) for key in keys],
    )


def register_station(
    *, session: Session, participant: Participant, station_in: StationCreate
) -> StationPublic:
    """Register a scan station's public key for the authenticated participant."""
    public_key = decode_new_public_key(station_in.public_key)
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
            keys = _keys_of(session, station.station_id)
    except IntegrityError as exc:
        raise Conflict(
            f"station {station_in.station_id!r} is already registered", rule="station.exists"
        ) from exc
    return station_public(station, participant, keys)


def get_station(*, session: Session, station_id: str) -> StationPublic:
    """A station's public view; ``NotFound`` if it was never registered."""
    station = station_store.get_station(session=session, station_id=station_id)
    if station is None:
        raise NotFound(f"no station {station_id!r}", rule="station.unknown")
    participant = participant_store.get_participant(
        session=session, participant_id=station.participant_id
    )
    assert participant is not None
    return station_public(station, participant, _keys_of(session, station_id))


def rotate_station_key(
    *, session: Session, participant: Participant, station_id: str, key_in: KeyCreate
) -> StationPublic:
    """Give the caller's station a new key; its current keys are valid until now.

    Events the old key signed before now are still accepted (a station's outbox drains after
    a rotation); a key the station had before cannot come back (``key.reused``).
    """
    public_key = decode_new_public_key(key_in.public_key)
    with session.begin():
        station = _own_station(session, participant, station_id)
        now = utcnow()
        key_history.retire_for(_keys_of(session, station_id), public_key, now=now)
        station_store.add_station_key(
            session=session,
            key=StationKey(station_id=station_id, public_key=public_key, valid_from=now),
        )
        station.public_key = public_key
        session.add(station)
        keys = _keys_of(session, station_id)
    return station_public(station, participant, keys)


def revoke_station_keys(
    *, session: Session, participant: Participant, station_id: str, revoke: KeyRevoke
) -> StationPublic:
    """Revoke one key of the caller's station (``public_key``) or every key not yet revoked.

    From now on nothing signed by a revoked key is accepted, whatever its event time; the
    station signs again after a rotation to a new key.
    """
    wanted = decode_public_key(revoke.public_key) if revoke.public_key is not None else None
    with session.begin():
        station = _own_station(session, participant, station_id)
        keys = _keys_of(session, station_id)
        session.add_all(key_history.revoke(keys, wanted, now=utcnow()))
        session.flush()
    return station_public(station, participant, keys)


def _own_station(session: Session, participant: Participant, station_id: str) -> Station:
    station = station_store.get_station(session=session, station_id=station_id)
    if station is None:
        raise NotFound(f"no station {station_id!r}", rule="station.unknown")
    if station.participant_id != participant.id:
        raise SignatureRejected(
            f"station {station_id!r} belongs to another participant", rule="station.not_yours"
        )
    return station


def _keys_of(session: Session, station_id: str) -> list[StationKey]:
    return station_store.get_station_keys(session=session, station_ids=[station_id])[station_id]
