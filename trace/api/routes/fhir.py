"""``/fhir``: HL7 FHIR R4 read and search for hospital information systems, and the
dispenses they post (``POST /fhir/MedicationDispense``, see ``medtrace.fhir.dispense``).

Answers are ``application/fhir+json``; errors are ``OperationOutcome`` resources (FHIR's
error shape, which FHIR clients expect) carrying medtrace's rule in ``details``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from medtrace.api.deps import (
    BearerDep,
    EngineDep,
    SessionDep,
    SettingsDep,
    get_current_participant,
)
from medtrace.api.errors import status_for
from medtrace.errors import InvalidInput, MedtraceError, NotFound, Unauthenticated
from medtrace.fhir import dispense, service
from medtrace.fhir.capability import FHIR_JSON, capability_statement, operation_outcome

router = APIRouter(prefix="/fhir", tags=["fhir"])

_ISSUE_CODES: dict[type[MedtraceError], str] = {InvalidInput: "invalid", NotFound: "not-found"}


def _outcome(respond: Callable[[], JSONResponse]) -> JSONResponse:
    """The response, or an ``OperationOutcome`` with the status of medtrace's error."""
    try:
        return respond()
    except MedtraceError as exc:
        code = next((c for cls, c in _ISSUE_CODES.items() if isinstance(exc, cls)), "processing")
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return JSONResponse(
            operation_outcome(code, exc.rule, exc.message),
            status_code=status_for(exc),
            media_type=FHIR_JSON,
            headers=headers,
        )


def _answer(build: Callable[[], dict[str, Any]]) -> JSONResponse:
    return _outcome(lambda: JSONResponse(build(), media_type=FHIR_JSON))


@router.get("/metadata")
def read_capability_statement(settings: SettingsDep) -> JSONResponse:
    """The CapabilityStatement."""
    today = dt.date.today().isoformat()
    return _answer(lambda: capability_statement(settings.public_url, today))


@router.post("/MedicationDispense", status_code=201)
async def create_medication_dispense(
    request: Request,
    engine: EngineDep,
    credentials: BearerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Record a dispense posted by a hospital system with the pharmacy's API token: ``201``
    with the recorded MedicationDispense and its ``Location`` (``200`` for a retry of one
    already recorded)."""
    body = await request.body()

    def respond() -> JSONResponse:
        participant = get_current_participant(engine, credentials)
        recorded = dispense.record_dispense(session=session, participant=participant, body=body)
        resource = service.read(
            session=session,
            resource_type="MedicationDispense",
            resource_id=recorded.event_id,
            base_url=settings.public_url,
        )
        return JSONResponse(
            resource,
            status_code=201 if recorded.created else 200,
            media_type=FHIR_JSON,
            headers={"Location": f"{settings.public_url}/fhir/MedicationDispense/{resource['id']}"},
        )

    return await run_in_threadpool(_outcome, respond)


@router.get("/{resource_type}")
def search_resources(
    resource_type: str, request: Request, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Search one resource type; a ``searchset`` Bundle, paged with ``_count``/``_offset``."""
    params = request.query_params.multi_items()
    return _answer(
        lambda: service.search(
            session=session,
            resource_type=resource_type,
            params=params,
            base_url=settings.public_url,
        )
    )


@router.get("/{resource_type}/{resource_id}")
def read_resource(
    resource_type: str, resource_id: str, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Read one resource by its logical id."""
    return _answer(
        lambda: service.read(
            session=session,
            resource_type=resource_type,
            resource_id=resource_id,
            base_url=settings.public_url,
        )
    )
