"""Recalls: ``POST /api/v1/recalls`` records a signed recall of a lot; its reach report is
``GET /api/v1/lots/{gtin}/{lot}/recall`` (the regulator and the lot's manufacturer only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from medtrace.api.deps import CurrentParticipant, SessionDep
from medtrace.schemas.capture import EnvelopeIn
from medtrace.schemas.recalls import RecallPublic, RecallReachPublic
from medtrace.services import recalls

router = APIRouter(prefix="/api/v1", tags=["recalls"])


@router.post("/recalls", response_model=RecallPublic, status_code=status.HTTP_201_CREATED)
def recall_lot(
    envelope: EnvelopeIn, participant: CurrentParticipant, session: SessionDep
) -> RecallPublic:
    """Recall a lot with a signed ``recall`` event (the lot's manufacturer or a regulator):
    every unit is flagged, every current holder alerted. A retry returns the same recall."""
    return recalls.recall_lot(session=session, participant=participant, envelope=envelope)


@router.get("/lots/{gtin}/{lot}/recall", response_model=RecallReachPublic)
def recall_reach(
    gtin: str,
    lot: str,
    participant: CurrentParticipant,
    session: SessionDep,
    after: Annotated[
        str, Query(max_length=20, description="The serial the page starts after")
    ] = "",
    limit: Annotated[
        int, Query(ge=1, le=recalls.REACH_PAGE_SIZE, description="Units in the page")
    ] = recalls.REACH_PAGE_SIZE,
) -> RecallReachPublic:
    """The recall of a lot and its reach: the counts of every unit up front, then a page of
    units in serial order, each with its state and holder, dispensed or not; follow
    ``next_after`` for the next page."""
    return recalls.recall_reach(
        session=session, participant=participant, gtin=gtin, lot=lot, after=after, limit=limit
    )
