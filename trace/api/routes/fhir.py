"""``/fhir``: HL7 FHIR R4 read and search for hospital information systems.

Answers are ``application/fhir+json``; errors are ``OperationOutcome`` resources (FHIR's
error shape, which FHIR clients expect) carrying medtrace's rule in ``details``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from medtrace.api.deps import SessionDep, SettingsDep
from medtrace.api.errors import status_for
from medtrace.errors import InvalidInput, MedtraceError, NotFound
from medtrace.fhir import service
from medtrace.fhir.capability import FHIR_JSON, capability_statement, operation_outcome

router = APIRouter(prefix="/fhir", tags=["fhir"])

_ISSUE_CODES: dict[type[MedtraceError], str] = {InvalidInput: "invalid", NotFound: "not-found"}


def _answer(build: Callable[[], dict[str, Any]]) -> JSONResponse:
    try:
        return JSONResponse(build(), media_type=FHIR_JSON)
    except MedtraceError as exc:
        code = next((c for cls, c in _ISSUE_CODES.items() if isinstance(exc, cls)), "processing")
        return JSONResponse(
            operation_outcome(code, exc.rule, exc.message),
            status_code=status_for(exc),
            media_type=FHIR_JSON,
        )


@router.get("/metadata")
def read_capability_statement(settings: SettingsDep) -> JSONResponse:
    """The CapabilityStatement."""
    today = dt.date.today().isoformat()
    return _answer(lambda: capability_statement(settings.public_url, today))


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
