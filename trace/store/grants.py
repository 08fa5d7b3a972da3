"""Capture grants: written once, revoked in place, read by capture and by their parties."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlmodel import Session, col, select

from medtrace.models import Participant
from medtrace.models.grants import CaptureGrant
from medtrace.store.grant_rows import GrantRow, grant_rows


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


def get_grant_row(*, session: Session, grant_id: int) -> GrantRow[CaptureGrant] | None:
    """A grant with its parties' GLNs."""
    row = session.exec(grant_rows(CaptureGrant).where(CaptureGrant.id == grant_id)).first()
    return None if row is None else GrantRow(*row)
