"""``/api/v1/reorder-plans``: a pharmacy's reorder plans from its dispense history, JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from medtrace import policies
from medtrace.api.deps import CurrentParticipant, SessionDep, SettingsDep
from medtrace.bounds import Days, Finite
from medtrace.schemas.reorder import ReorderPlansPublic
from medtrace.services import reorder
from medtrace.services.reorder import PlanningParameters

router = APIRouter(prefix="/api/v1", tags=["reorder"])


def planning_parameters(
    settings: SettingsDep,
    lead_time_days: Annotated[Days | None, Query()] = None,
    review_period_days: Annotated[Days | None, Query()] = None,
    service_level: Annotated[Finite | None, Query(gt=0, lt=1)] = None,
    history_days: Annotated[int | None, Query(ge=2, le=3660)] = None,
) -> PlanningParameters:
    """The query's planning parameters, each defaulting to the settings."""
    return policies.planning_parameters(settings).with_overrides(
        lead_time_days=lead_time_days,
        review_period_days=review_period_days,
        service_level=service_level,
        history_days=history_days,
    )


Parameters = Annotated[PlanningParameters, Depends(planning_parameters)]


def _plans(
    session: SessionDep, participant: CurrentParticipant, gln: str | None, parameters: Parameters
) -> ReorderPlansPublic:
    return reorder.reorder_plans_for(
        session=session,
        participant=participant,
        gln=gln,
        today=dt.datetime.now(dt.UTC).date(),
        parameters=parameters,
    )


def _csv(plans: ReorderPlansPublic, gln: str) -> Response:
    today = dt.datetime.now(dt.UTC).date()
    return Response(
        reorder.plans_csv(plans),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="reorder-{gln}-{today}.csv"'},
    )


@router.get("/reorder-plans", response_model=ReorderPlansPublic)
def reorder_plans(
    session: SessionDep,
    participant: CurrentParticipant,
    parameters: Parameters,
    gln: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> ReorderPlansPublic | Response:
    """The caller's plans, one per product it dispensed or holds (a regulator passes
    ``gln=``), flagging stock at risk of expiry; ``format=csv`` for a spreadsheet."""
    plans = _plans(session, participant, gln, parameters)
    return _csv(plans, gln or participant.gln) if format == "csv" else plans


@router.get("/reorder-plans.csv", response_class=Response)
def reorder_plans_csv(
    session: SessionDep,
    participant: CurrentParticipant,
    parameters: Parameters,
    gln: str | None = None,
) -> Response:
    """The same plans as CSV (RFC 4180)."""
    return _csv(_plans(session, participant, gln, parameters), gln or participant.gln)
