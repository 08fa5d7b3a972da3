"""``/api/v1/capture-grants``: a participant names another to capture at one of its GLNs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from medtrace.api.deps import CurrentParticipant, SessionDep
from medtrace.bounds import MAX_INTEGER
from medtrace.schemas.grants import CaptureGrantCreate, CaptureGrantPublic
from medtrace.services import grants
from medtrace.services.grants import Channel

router = APIRouter(prefix="/api/v1/capture-grants", tags=["capture"])


@router.post("", response_model=CaptureGrantPublic, status_code=status.HTTP_201_CREATED)
def grant_capture(
    grant_in: CaptureGrantCreate, participant: CurrentParticipant, session: SessionDep
) -> CaptureGrantPublic:
    """Let another participant capture events at your GLN (the events' ``gln``) until
    ``ends_at``: its stations and its EPCIS documents record for you, and each leaf names it."""
    return grants.grant_capture(
        session=session, grantor=participant, grant_in=grant_in, channel=Channel.API
    )


@router.post("/{grant_id}/revoke", response_model=CaptureGrantPublic)
def revoke_capture_grant(
    grant_id: Annotated[int, Path(ge=1, le=MAX_INTEGER)],
    participant: CurrentParticipant,
    session: SessionDep,
) -> CaptureGrantPublic:
    """Revoke a grant you gave: the grantee's next capture at your GLN is refused."""
    return grants.revoke_capture_grant(
        session=session, grantor=participant, grant_id=grant_id, channel=Channel.API
    )


@router.get("", response_model=list[CaptureGrantPublic])
def read_capture_grants(
    participant: CurrentParticipant, session: SessionDep
) -> list[CaptureGrantPublic]:
    """The capture grants you gave or received (a regulator: every grant), oldest first."""
    return grants.list_capture_grants(session=session, participant=participant)
