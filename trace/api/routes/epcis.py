"""GS1 EPCIS 2.0 REST binding: ``POST /epcis/capture`` and its jobs, ``GET /epcis/events``,
``POST /epcis/events`` (one event, captured at once) and ``GET /epcis/events/{eventID}``.

Capture takes JSON-LD, or EPCIS 1.2 or 2.0 XML (``Content-Type: application/xml`` or
``text/xml``): the XML is read into the JSON-LD document (``epcis.xml_capture``) and captured
by the same function; ``POST /epcis/events`` takes JSON-LD only (the XML binding has no
document of one bare event). Answers are JSON-LD (``application/ld+json``), or EPCIS 2.0 XML
when the client prefers ``application/xml`` (``Accept``). A participant's API token is
required, as for capture. Multiple values of one parameter are separated by ``|``, as the
binding says. An eventID is a URI: in a path it is percent-encoded
(``ni%3A%2F%2F%2Fsha-256%3B…``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from medtrace.api.deps import CurrentParticipant, SessionDep, SettingsDep
from medtrace.bounds import Instant
from medtrace.config import Settings
from medtrace.custody import ReceiptPolicy
from medtrace.epcis import capture as epcis_capture
from medtrace.epcis import query as epcis_query
from medtrace.epcis import xml_capture
from medtrace.epcis.document import CONTEXT, query_document
from medtrace.epcis.xml_query import query_document_xml
from medtrace.models import utcnow

router = APIRouter(prefix="/epcis", tags=["epcis"])
JSON_LD = "application/ld+json"
XML = "application/xml"
_XML_TYPES = frozenset({XML, "text/xml"})
_JSON_TYPES = frozenset({JSON_LD, "application/json", "application/*", "*/*"})


def _values(text: str | None) -> list[str] | None:
    return None if text is None else [v for v in text.split("|") if v]


def _capture_settings(settings: Settings) -> epcis_capture.CaptureSettings:
    return epcis_capture.CaptureSettings(
        receipt_policy=ReceiptPolicy(settings.capture.receipt_policy),
        min_transit=dt.timedelta(seconds=settings.capture.min_transit_seconds),
    )


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


async def _body(request: Request) -> bytes:
    """The request's body, its declared size checked before it is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        epcis_capture.check_size(int(declared))
    return await request.body()


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON-LD object."""
    return await run_in_threadpool(epcis_capture.parse_json, await _body(request))


async def _document(request: Request) -> dict[str, Any]:
    """The request's EPCIS document: JSON-LD, or XML (by its ``Content-Type``) read into
    the JSON-LD document it stands for."""
    body = await _body(request)
    is_xml = _media_type(request.headers.get("content-type", "")) in _XML_TYPES
    reader = xml_capture.document_from_xml if is_xml else epcis_capture.parse_json
    return await run_in_threadpool(reader, body)


def _prefers_xml(accept: str) -> bool:
    """Whether ``Accept`` (RFC 9110 §12.5.1) ranks XML above JSON-LD; on a tie, or with
    no ``Accept``, the answer stays JSON-LD."""
    best = {True: 0.0, False: 0.0}
    for item in accept.split(","):
        media, *params = item.split(";")
        quality = next((p.split("=", 1)[1] for p in params if p.strip().startswith("q=")), "1")
        try:
            weight = float(quality)
        except ValueError:
            continue
        kind = _media_type(media)
        if kind in _XML_TYPES or kind in _JSON_TYPES:
            best[kind in _XML_TYPES] = max(best[kind in _XML_TYPES], weight)
    return best[True] > best[False]


def _xml(request: Request, document: dict[str, Any], headers: dict[str, str]) -> Response:
    """The query document in EPCIS 2.0 XML; ``406`` (``epcis.no_xml_form``) when an event
    carries what the XML binding cannot write (a captured extension whose name or namespace
    is no XML one): the JSON-LD answer holds it."""
    try:
        return Response(query_document_xml(document), media_type=XML, headers=headers)
    except ValueError as exc:
        request.state.rule = "epcis.no_xml_form"
        message = f"{exc}; ask for JSON-LD (Accept: {JSON_LD})"
        return JSONResponse(
            {"detail": {"rule": "epcis.no_xml_form", "message": message}},
            status_code=status.HTTP_406_NOT_ACCEPTABLE,
        )


def _answer(request: Request, document: dict[str, Any], headers: dict[str, str]) -> Response:
    if _prefers_xml(request.headers.get("accept", "")):
        return _xml(request, document, headers)
    return JSONResponse(document, media_type=JSON_LD, headers=headers)


@router.get("/events")
def query_events(
    request: Request,
    participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
    event_type: Annotated[str | None, Query(alias="eventType")] = None,
    ge_event_time: Annotated[Instant | None, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[Instant | None, Query(alias="LT_eventTime")] = None,
    eq_biz_step: Annotated[str | None, Query(alias="EQ_bizStep")] = None,
    eq_disposition: Annotated[str | None, Query(alias="EQ_disposition")] = None,
    match_epc: Annotated[str | None, Query(alias="MATCH_epc")] = None,
    match_any_epc: Annotated[str | None, Query(alias="MATCH_anyEPC")] = None,
    eq_biz_location: Annotated[str | None, Query(alias="EQ_bizLocation")] = None,
    eq_read_point: Annotated[str | None, Query(alias="EQ_readPoint")] = None,
    eq_destination: Annotated[str | None, Query(alias="EQ_destination_owning_party")] = None,
    per_page: Annotated[int, Query(alias="perPage")] = 30,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
) -> Response:
    """Events matching the SimpleEventQuery parameters that the caller is party to (the
    regulator: all), as an EPCISQueryDocument (XML if preferred); a ``Link`` header with
    ``rel="next"`` points to the next page."""
    page = epcis_query.query_events(
        session=session,
        query=epcis_query.EventQuery(
            event_types=_values(event_type),
            ge_event_time=ge_event_time,
            lt_event_time=lt_event_time,
            biz_steps=_values(eq_biz_step),
            dispositions=_values(eq_disposition),
            match_epc=_values(match_epc),
            match_any_epc=_values(match_any_epc),
            biz_locations=_values(eq_biz_location),
            read_points=_values(eq_read_point),
            destinations=_values(eq_destination),
            per_page=per_page,
            next_page_token=next_page_token,
        ),
        participant=participant,
    )
    return query_answer(page, request=request, public_url=settings.public_url)


def query_answer(
    page: epcis_query.EventPage,
    *,
    request: Request,
    public_url: str,
    query_name: str = "SimpleEventQuery",
) -> Response:
    """A page of events as an EPCISQueryDocument (JSON-LD, or XML if the client prefers it),
    with a ``Link`` to the next page."""
    headers = {}
    if page.next_page_token is not None:  # on the public URL, never the request's Host
        query = request.url.include_query_params(nextPageToken=page.next_page_token).query
        headers["Link"] = f'<{public_url}{request.url.path}?{query}>; rel="next"'
    document = query_document(
        page.events, created=utcnow(), contexts=page.contexts, query_name=query_name
    )
    return _answer(request, document, headers)


@router.post("/events", status_code=status.HTTP_201_CREATED)
async def capture_event(
    request: Request, participant: CurrentParticipant, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Capture one EPCIS event (JSON-LD, with its ``@context``) at once: ``201`` with the
    event's URL in ``Location``, ``409`` (``epcis.duplicate_event``) when its eventID was
    captured before, or the refusal's own status and rule; nothing is written then."""
    document = await _json_body(request)
    event_id = await run_in_threadpool(
        epcis_capture.capture_event,
        session=session,
        participant=participant,
        document=document,
        settings=_capture_settings(settings),
    )
    return JSONResponse(
        {"eventID": event_id},
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/epcis/events/{quote(event_id, safe='')}"},
    )


@router.get("/events/{event_id:path}")
def read_event(
    event_id: str, request: Request, participant: CurrentParticipant, session: SessionDep
) -> Response:
    """One event by its EPCIS ``eventID`` (a URI, percent-encoded), if the caller is party to
    it (whole, or its custody record); in XML, as the one event of a query document (the XSD
    has no document of a bare event)."""
    event, contexts = epcis_query.get_event(
        session=session, epcis_id=event_id, participant=participant
    )
    if _prefers_xml(request.headers.get("accept", "")):
        return _xml(request, query_document([event], created=utcnow(), contexts=contexts), {})
    return JSONResponse({"@context": [CONTEXT, *contexts], **event}, media_type=JSON_LD)


@router.post("/capture", status_code=status.HTTP_202_ACCEPTED)
async def capture(
    request: Request, participant: CurrentParticipant, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Capture an EPCISDocument or EPCISQueryDocument (JSON-LD, or an EPCISDocument in XML
    1.2 or 2.0 by its ``Content-Type``) authenticated by the participant's token.

    A malformed document is refused at once (4xx naming the rule and the event's ``index``);
    a valid one becomes a capture job: ``202`` with its URL in ``Location``. The job captures
    every event or none; poll it with ``GET /epcis/capture/{captureID}``.
    """
    document = await _document(request)
    capture_id = await run_in_threadpool(
        epcis_capture.capture_document,
        session=session,
        participant=participant,
        document=document,
        settings=_capture_settings(settings),
    )
    location = f"/epcis/capture/{capture_id}"
    return JSONResponse(
        {"captureID": capture_id},
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": location},
    )


@router.get("/capture/{capture_id}")
def read_capture_job(
    capture_id: str, participant: CurrentParticipant, session: SessionDep
) -> dict[str, Any]:
    """A capture job of the calling participant: ``running``, ``success``, ``errors``."""
    return epcis_capture.get_job(session=session, participant=participant, capture_id=capture_id)
