"""The GS1 Digital Link resolver: ``/01/{gtin}[/10/{lot}]/21/{serial}[?17=YYMMDD]``.

A phone's camera opens the URI in a QR code; this service is its own resolver, so the path
renders the verify page, or the same answer as JSON for ``Accept: application/json``. A unit
never seen is a clear ``unknown`` (404), never a server error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from medtrace.api.deps import SessionDep, SettingsDep
from medtrace.errors import InvalidInput
from medtrace.identifiers import check_x20, parse_expiry, parse_gtin
from medtrace.models import Verdict
from medtrace.services.verify import verify_unit

router = APIRouter(tags=["resolver"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(rfc3339: str) -> str:
    """A signed event time for people: minutes, in UTC."""
    return dt.datetime.fromisoformat(rfc3339).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when

VERDICT_WORDS = {
    Verdict.GENUINE: "Genuine and in date",
    Verdict.EXPIRED: "Expired",
    Verdict.RECALLED: "Recalled",
    Verdict.QUARANTINED: "Quarantined",
    Verdict.SUSPECT: "Suspect",
    Verdict.UNKNOWN: "Unknown",
}

ExpiryQuery = Annotated[str | None, Query(alias="17", description="Expiry, YYMMDD")]


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _resolve(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    gtin: str,
    serial: str,
    lot: str | None,
    expiry: str | None,
) -> Response:
    try:
        answer = verify_unit(
            session=session,
            gtin=parse_gtin(gtin),
            serial=check_x20(serial, field="serial"),
            lot=None if lot is None else check_x20(lot, field="lot"),
            expiry=None if expiry is None else parse_expiry(expiry),
            today=dt.datetime.now(dt.UTC).date(),
            base_url=settings.public_url,
        )
    except InvalidInput as exc:
        if _wants_json(request):
            raise
        return templates.TemplateResponse(
            request, "error.html", {"rule": exc.rule, "message": exc.message}, status_code=422
        )
    status = 404 if answer.verdict is Verdict.UNKNOWN else 200
    if _wants_json(request):
        return JSONResponse(answer.model_dump(mode="json"), status_code=status)
    return templates.TemplateResponse(
        request,
        "verify.html",
        {"answer": answer, "words": VERDICT_WORDS, "gtin": gtin, "serial": serial},
        status_code=status,
    )


@router.get("/01/{gtin}/21/{serial}", response_class=HTMLResponse)
def resolve_unit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    gtin: str,
    serial: str,
    expiry: ExpiryQuery = None,
) -> Response:
    """Verify a unit by GTIN and serial (HTML, or JSON for ``Accept: application/json``)."""
    return _resolve(request, session, settings, gtin, serial, None, expiry)


@router.get("/01/{gtin}/10/{lot}/21/{serial}", response_class=HTMLResponse)
def resolve_unit_with_lot(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    gtin: str,
    lot: str,
    serial: str,
    expiry: ExpiryQuery = None,
) -> Response:
    """Verify a unit by GTIN, lot and serial (HTML, or JSON for ``Accept: application/json``)."""
    return _resolve(request, session, settings, gtin, serial, lot, expiry)
