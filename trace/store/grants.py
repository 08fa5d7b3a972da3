"""Capture grants: written once, revoked in place, read by capture and by their parties."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import Select

from medtrace.models import Participant
from medtrace.models.grants import CaptureGrant


def add_grant(*, session: Session, grant: CaptureGrant) -> CaptureGrant:
    """Insert a grant and flush, so it has an id."""
    session.add(grant)
    session.flush()
    return grant


def lock_grant(*, session: Session, grant_id: int) -> CaptureGrant | None:
    """A grant by id, locked until the transaction ends (a revocation waits for the captures
    that read it as valid to commit: ``granting_principals`` locks it for share)."""
    statement = select(CaptureGrant).where(CaptureGrant.id == grant_id).with_for_update()
    return session.exec(statement).first()


def granting_principals(
    *, session: Session, grantee_id: int, glns: Collection[str], at: dt.datetime
) -> dict[str, Participant]:
    """The grantors whose grant, valid at ``at`` (not revoked, not ended), lets ``grantee_id``
    capture at each of ``glns``, by GLN. A grant only counts at its grantor's own GLN, so a
    row naming another participant's GLN would grant nothing. The grants read are locked for
    share until the transaction ends (PostgreSQL; SQLite has one writer at a time)."""
    if not glns:
        return {}
    statement = (
        select(Participant)
        .join(CaptureGrant, col(CaptureGrant.grantor_id) == col(Participant.id))
        .where(
            CaptureGrant.grantee_id == grantee_id,
            col(CaptureGrant.gln).in_(set(glns)),
            col(CaptureGrant.gln) == col(Participant.gln),
            col(CaptureGrant.revoked_at).is_(None),
            col(CaptureGrant.ends_at) > at,
        )
        .with_for_update(read=True, of=CaptureGrant)
    )
    return {p.gln: p for p in session.exec(statement)}


class GrantRow(NamedTuple):
    """A grant with the GLNs of its grantor and grantee."""

    grant: CaptureGrant
    grantor_gln: str
    grantee_gln: str


def _grant_rows() -> Select[CaptureGrant, str, str]:
    grantor, grantee = aliased(Participant), aliased(Participant)
    return (
        select(CaptureGrant, grantor.gln, grantee.gln)
        .join(grantor, col(grantor.id) == col(CaptureGrant.grantor_id))
        .join(grantee, col(grantee.id) == col(CaptureGrant.grantee_id))
        .order_by(col(CaptureGrant.id))
    )


def get_grant_row(*, session: Session, grant_id: int) -> GrantRow | None:
    """A grant with its parties' GLNs."""
    row = session.exec(_grant_rows().where(CaptureGrant.id == grant_id)).first()
    return None if row is None else GrantRow(*row)


def list_grants(*, session: Session, participant_id: int | None) -> list[GrantRow]:
    """Grants given or received by a participant (every grant for ``None``), oldest first."""
    statement = _grant_rows()
    if participant_id is not None:
        statement = statement.where(
            or_(
                CaptureGrant.grantor_id == participant_id,
                CaptureGrant.grantee_id == participant_id,
            )
        )
    return [GrantRow(*row) for row in session.exec(statement)]
