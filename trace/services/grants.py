"""Capture grants: a participant names another to capture events at one of its GLNs.

Only the grantor decides: it grants its own GLN (``capture_grant.not_your_gln`` otherwise,
so a grantee cannot pass its principal's GLN on), with an end, and only it revokes. Capture
reads the grants valid at the moment of capture (``medtrace.store.grants.granting_principals``)
and the custody rules decide with them (``medtrace.custody.acting_at``): a revoked or ended
grant stops the next capture. Each grant keeps who created and revoked it, and when.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlmodel import Session

from medtrace.errors import Conflict, Forbidden, InvalidInput, NotFound
from medtrace.models import Participant, Role, as_utc, utcnow
from medtrace.models.grants import CaptureGrant
from medtrace.protocol.identifiers import parse_gln
from medtrace.schemas.grants import CaptureGrantCreate, CaptureGrantPublic
from medtrace.services.registry import participant_by_gln
from medtrace.store import grant_rows
from medtrace.store import grants as grant_store
from medtrace.store.grant_rows import GrantRow


class Channel(StrEnum):
    """Where a grant was created or revoked, recorded with the acting participant."""

    API = "api"
    CLI = "cli"


def _public(row: GrantRow[CaptureGrant], now: dt.datetime) -> CaptureGrantPublic:
    grant = row.grant
    assert grant.id is not None
    ends_at = as_utc(grant.ends_at)
    return CaptureGrantPublic(
        id=grant.id,
        grantor=row.grantor_gln,
        grantee=row.grantee_gln,
        gln=grant.gln,
        granted_at=as_utc(grant.granted_at),
        granted_by=grant.granted_by,
        ends_at=ends_at,
        revoked_at=None if grant.revoked_at is None else as_utc(grant.revoked_at),
        revoked_by=grant.revoked_by,
        active=grant.revoked_at is None and ends_at > now,
    )


def _end(ends_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """``ends_at`` in UTC, later than ``now``; a time no datetime holds in UTC is refused."""
    try:
        end = ends_at.astimezone(dt.UTC)
    except OverflowError as exc:
        raise InvalidInput(
            f"ends_at {ends_at.isoformat()} is out of range", rule="capture_grant.bad_end"
        ) from exc
    if end <= now:
        raise InvalidInput(
            f"ends_at {end.isoformat()} has passed: a grant ends in the future",
            rule="capture_grant.bad_end",
        )
    return end


def _grantee(session: Session, grantor: Participant, grant_in: CaptureGrantCreate) -> Participant:
    """The grantee named by ``grant_in``, once the grantor may grant it the GLN named."""
    gln, grantee_gln = parse_gln(grant_in.gln), parse_gln(grant_in.grantee)
    if gln != grantor.gln:
        raise Forbidden(
            f"GLN {gln} is not {grantor.gln}'s: a participant grants capture only at its own "
            "GLN (a grantee cannot pass its principal's on)",
            rule="capture_grant.not_your_gln",
        )
    if grantee_gln == grantor.gln:
        raise InvalidInput("you capture at your own GLN without a grant", rule="capture_grant.self")
    return participant_by_gln(session, grantee_gln)


def _check_none_active(session: Session, grantee: Participant, gln: str, now: dt.datetime) -> None:
    """One grant at a time per grantee and GLN: with two, revoking one would leave the
    grantee capturing under the other, against what the grantor meant."""
    assert grantee.id is not None
    if grant_store.granting_principals(session=session, grantee_id=grantee.id, glns={gln}, at=now):
        raise Conflict(
            f"{grantee.gln} already holds a grant at {gln} that has not ended: revoke it "
            "first to change its end",
            rule="capture_grant.exists",
        )


def grant_capture(
    *, session: Session, grantor: Participant, grant_in: CaptureGrantCreate, channel: Channel
) -> CaptureGrantPublic:
    """Let ``grant_in.grantee`` capture events at the grantor's GLN until ``ends_at``.

    Raises ``Forbidden`` (``capture_grant.not_your_gln``) for a GLN not the grantor's,
    ``Conflict`` (``capture_grant.exists``) while another grant of it to the grantee runs,
    ``NotFound`` for an unknown grantee, ``InvalidInput`` for oneself, a malformed GLN or an
    end that has passed.
    """
    assert grantor.id is not None
    now = utcnow()
    end = _end(grant_in.ends_at, now)
    with session.begin():
        grantee = _grantee(session, grantor, grant_in)
        assert grantee.id is not None
        _check_none_active(session, grantee, grantor.gln, now)
        grant = grant_store.add_grant(
            session=session,
            grant=CaptureGrant(
                grantor_id=grantor.id,
                grantee_id=grantee.id,
                gln=grantor.gln,
                granted_at=now,
                granted_by=f"{channel}:{grantor.gln}",
                ends_at=end,
            ),
        )
        public = _public(GrantRow(grant, grantor.gln, grantee.gln), now)
    return public


def revoke_capture_grant(
    *, session: Session, grantor: Participant, grant_id: int, channel: Channel
) -> CaptureGrantPublic:
    """Revoke a grant the caller gave: the grantee's next capture at that GLN is refused.
    Revoking a revoked grant changes nothing. ``NotFound`` (``capture_grant.unknown``),
    ``Forbidden`` (``capture_grant.not_yours``) for a grant someone else gave, the grantee's
    own included."""
    with session.begin():
        grant = grant_store.lock_grant(session=session, grant_id=grant_id)
        if grant is None:
            raise NotFound(f"no capture grant {grant_id}", rule="capture_grant.unknown")
        if grant.grantor_id != grantor.id:
            raise Forbidden(
                f"capture grant {grant_id} is not yours to revoke: only its grantor may",
                rule="capture_grant.not_yours",
            )
        if grant.revoked_at is None:
            grant.revoked_at = utcnow()
            grant.revoked_by = f"{channel}:{grantor.gln}"
            session.add(grant)
            session.flush()
        row = grant_store.get_grant_row(session=session, grant_id=grant_id)
        assert row is not None
        public = _public(row, utcnow())
    return public


def list_capture_grants(*, session: Session, participant: Participant) -> list[CaptureGrantPublic]:
    """The grants the caller gave or received, oldest first (a regulator's: every grant)."""
    owner_id = None if participant.role is Role.REGULATOR else participant.id
    now = utcnow()
    return [
        _public(row, now)
        for row in grant_rows.list_grants(CaptureGrant, session=session, participant_id=owner_id)
    ]
