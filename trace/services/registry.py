"""Participants and their API tokens: who may call the service (their stations and sensors
are ``medtrace.services.devices``)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from medtrace.models import Participant, Role, utcnow
from medtrace.protocol.identifiers import parse_gln
from medtrace.store import participants as participant_store

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
        participant = participant_by_gln(session, gln)
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
        participant = participant_by_gln(session, gln)
        return participant_store.revoke_tokens(
            session=session, revoked_at=utcnow(), participant_id=participant.id
        )


def participant_by_gln(session: Session, gln: str) -> Participant:
    """The participant registered with ``gln``: ``InvalidInput`` for a malformed GLN,
    ``NotFound`` (``participant.unknown``) for one no one registered."""
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
