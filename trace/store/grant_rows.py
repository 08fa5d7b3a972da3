"""Grants read with both parties' GLNs.

A capture grant (``medtrace.models.grants``) and a sensor grant (``medtrace.models.iot``) are
stored alike, a grantor and a grantee by participant id, so both are read by the same queries,
named by the grant's table.
"""

from __future__ import annotations

from typing import Generic, NamedTuple, TypeVar

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import Select

from medtrace.models import Participant
from medtrace.models.grants import CaptureGrant
from medtrace.models.iot import SensorGrant

G = TypeVar("G", CaptureGrant, SensorGrant)


class GrantRow(NamedTuple, Generic[G]):
    """A grant with the GLNs of its grantor and grantee."""

    grant: G
    grantor_gln: str
    grantee_gln: str


def grant_rows(table: type[G]) -> Select[G, str, str]:
    """The grants of ``table`` with their grantor's and grantee's GLNs, oldest first."""
    grantor, grantee = aliased(Participant), aliased(Participant)
    return (
        select(table, grantor.gln, grantee.gln)
        .join(grantor, col(grantor.id) == col(table.grantor_id))
        .join(grantee, col(grantee.id) == col(table.grantee_id))
        .order_by(col(table.id))
    )


def list_grants(
    table: type[G], *, session: Session, participant_id: int | None
) -> list[GrantRow[G]]:
    """Grants of ``table`` given or received by a participant (every grant for ``None``),
    oldest first."""
    statement = grant_rows(table)
    if participant_id is not None:
        statement = statement.where(
            or_(table.grantor_id == participant_id, table.grantee_id == participant_id)
        )
    return [GrantRow(*row) for row in session.exec(statement)]
