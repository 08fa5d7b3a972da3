"""Participants and their API tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import bindparam
from sqlmodel import Session, col, select, update

from medtrace.models import ApiToken, Participant


def get_participant(*, session: Session, participant_id: int) -> Participant | None:
    """The participant with this id."""
    return session.get(Participant, participant_id)


#: Built once (every verify runs them): building a statement costs more than running it.
_BY_GLN = select(Participant).where(Participant.gln == bindparam("gln"))
_BY_IDS = select(Participant).where(col(Participant.id).in_(bindparam("ids", expanding=True)))


def get_participant_by_gln(*, session: Session, gln: str) -> Participant | None:
    """The participant registered with this GLN."""
    return session.exec(_BY_GLN, params={"gln": gln}).first()


def get_participants(*, session: Session, ids: Iterable[int]) -> dict[int, Participant]:
    """Participants by id, for rendering many events at once."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.exec(_BY_IDS, params={"ids": sorted(wanted)})
    return {p.id: p for p in rows if p.id is not None}


def get_participant_by_token_hash(*, session: Session, token_hash: str) -> Participant | None:
    """The participant owning an unrevoked token with this hash."""
    statement = (
        select(Participant)
        .join(ApiToken, col(ApiToken.participant_id) == col(Participant.id))
        .where(ApiToken.token_hash == token_hash, col(ApiToken.revoked_at).is_(None))
    )
    return session.exec(statement).first()


def add_participant(*, session: Session, participant: Participant) -> Participant:
    """Insert a participant and flush, so it has an id."""
    session.add(participant)
    session.flush()
    return participant


def add_token(*, session: Session, participant_id: int, token_hash: str) -> ApiToken:
    """Insert an API token hash for a participant."""
    token = ApiToken(participant_id=participant_id, token_hash=token_hash)
    session.add(token)
    session.flush()
    return token


def revoke_tokens(
    *,
    session: Session,
    revoked_at: dt.datetime,
    token_hash: str | None = None,
    participant_id: int | None = None,
) -> int:
    """Mark unrevoked tokens revoked: the one with ``token_hash``, or every token of
    ``participant_id``; return how many. (Never all tokens: one of the two is required.)"""
    if token_hash is None and participant_id is None:
        raise ValueError("revoke_tokens needs a token_hash or a participant_id")
    statement = update(ApiToken).where(col(ApiToken.revoked_at).is_(None))
    if token_hash is not None:
        statement = statement.where(col(ApiToken.token_hash) == token_hash)
    if participant_id is not None:
        statement = statement.where(col(ApiToken.participant_id) == participant_id)
    count: int = session.exec(statement.values(revoked_at=revoked_at)).rowcount
    return count
