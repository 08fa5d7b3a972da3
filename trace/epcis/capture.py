"""EPCIS 2.0 capture (REST binding ``POST /capture``): an EPCISDocument in, medtrace events out.

The document is checked whole before anything is written: JSON-LD with the EPCIS 2.0
context, ObjectEvents and AggregationEvents only, a CBV 2.0 bizStep medtrace knows (and the
action that goes with it), GS1 EPCs (EPC URNs or Digital Link URIs), a readPoint GLN, times
with a zone and not in the future, and no member medtrace does not record (the leaf is
public and permanent: ``check_fields``). A document that fails is refused with a 4xx naming the
rule and the event's ``index``; nothing is written.

A valid document becomes a capture job, run at once with the ``rollback`` behaviour: the
custody rules apply to every event in order, as for station envelopes, and either all events
are recorded or none (the job then lists the refusal). Each ObjectEvent yields one medtrace
event per EPC.

These events are authenticated by the participant's API token, not by a station key. Their
ledger leaf says so: it is the canonical JSON of ``{"epcis", "event", "participant"}`` (the
EPCIS event as sent; the medtrace event read from it; the participant's GLN) and has no
``signature`` or ``station_id``, so any reader can tell a token-captured event from a
station-signed one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from medtrace.custody import ReceiptPolicy
from medtrace.epcis.document import CONTEXT
from medtrace.epcis.epc import Epc, parse_epc, parse_location
from medtrace.epcis.vocabulary import CBV_DISPOSITIONS, SHAPES, bare, event_type_for
from medtrace.errors import InvalidInput, MedtraceError, NotFound, TooLarge
from medtrace.models import EventType, Participant, utcnow
from medtrace.models.epcis import CaptureJob
from medtrace.schemas.capture import TYPES_WITH_DESTINATION
from medtrace.services.capture import (
    Authenticated,
    capture_authenticated,
    token_authenticated,
)

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_EVENTS = 10_000
_LOT_KEYS = ("cbvmda:lotNumber", "lotNumber")
_EXPIRY_KEYS = ("cbvmda:itemExpirationDate", "itemExpirationDate")
#: The members of an EPCIS event that medtrace reads or checks. The leaf keeps the event as
#: sent and the ledger is public and permanent, so any other member (user extensions such as
#: ``example:myField``, bizTransactionList, quantity lists, sensor data, certificationInfo) is
#: refused by name rather than published.
_EVENT_FIELDS = frozenset(
    {
        "type", "eventID", "eventTime", "eventTimeZoneOffset", "action", "bizStep",
        "disposition", "readPoint", "bizLocation", "epcList", "parentID", "childEPCs",
        "destinationList", "sourceList", "ilmd",
    }
)  # fmt: skip
#: The members of each nested object medtrace reads.
_NESTED_FIELDS = {
    "readPoint": frozenset({"id"}),
    "bizLocation": frozenset({"id"}),
    "destinationList": frozenset({"type", "destination"}),
    "sourceList": frozenset({"type", "source"}),
    "ilmd": frozenset(_LOT_KEYS + _EXPIRY_KEYS),
}
#: CBV 2.0 §7.4 source/destination types, bare or as the CBV 2.0 web URI or 1.x URN.
_PARTY_TYPES = frozenset(
    f"{prefix}{term}"
    for term in ("owning_party", "possessing_party", "location")
    for prefix in ("", "https://ref.gs1.org/cbv/SDT-", "urn:epcglobal:cbv:sdt:")
)
_EVENT_ID = re.compile(
    r"ni:///sha-256;[0-9a-f]{64}(\?ver=CBV2\.0)?|urn:uuid:[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)
_ZONE_OFFSET = re.compile(r"[+-](0\d|1[0-4]):[0-5]\d")


def check_size(length: int) -> None:
    """Refuse a document larger than ``MAX_DOCUMENT_BYTES`` (before or after reading it)."""
    if length > MAX_DOCUMENT_BYTES:
        raise TooLarge(
            f"the document has {length} bytes; at most {MAX_DOCUMENT_BYTES}",
            rule="capture.too_large",
        )


def _malformed(message: str, **context: Any) -> InvalidInput:
    return InvalidInput(message, rule="epcis.malformed", **context)


def json_document(body: bytes) -> Any:
    """The JSON value of a body (``InvalidInput`` if it is too large or not JSON)."""
    check_size(len(body))
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"the body is not JSON: {exc}") from exc


def parse_document(body: bytes) -> list[dict[str, Any]]:
    """The events of a JSON-LD EPCISDocument, or ``InvalidInput`` naming what is wrong."""
    return document_events(json_document(body))


def document_events(document: Any) -> list[dict[str, Any]]:
    """The events of an EPCISDocument (JSON-LD, or XML read by ``xml_capture``), or
    ``InvalidInput`` naming what is wrong."""
    if not isinstance(document, dict):
        raise _malformed("an EPCISDocument is a JSON object")
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if CONTEXT not in contexts:
        raise InvalidInput(
            f"JSON-LD @context must include the EPCIS 2.0 context {CONTEXT}",
            rule="epcis.bad_context",
        )
    if document.get("type") != "EPCISDocument":
        raise _malformed(f"type is {document.get('type')!r}, not 'EPCISDocument'")
    body_part = document.get("epcisBody")
    events = body_part.get("eventList") if isinstance(body_part, dict) else None
    if not isinstance(events, list) or not events:
        raise _malformed("epcisBody.eventList must be a non-empty list")
    if len(events) > MAX_EVENTS:
        raise InvalidInput(f"at most {MAX_EVENTS} events per document", rule="capture.too_large")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise _malformed("an event is a JSON object", index=index)
    return events


def _location(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise _malformed(f"{name} is an object with a string 'id'")
    return parse_location(value["id"])


def _destination(raw: Mapping[str, Any]) -> str:
    for entry in raw.get("destinationList") or ():
        if isinstance(entry, dict) and isinstance(entry.get("destination"), str):
            return parse_location(entry["destination"])
    raise InvalidInput(
        "a shipment or return names its destination (destinationList)",
        rule="epcis.missing_destination",
    )


def _ilmd(raw: Mapping[str, Any]) -> dict[str, str]:
    ilmd = raw.get("ilmd")
    found: dict[str, str] = {}
    if isinstance(ilmd, dict):
        for field, keys in (("lot", _LOT_KEYS), ("expiry", _EXPIRY_KEYS)):
            values = [ilmd[k] for k in keys if isinstance(ilmd.get(k), str)]
            if values:
                found[field] = values[0]
    return found


def _object(epc: Epc, text: str) -> dict[str, str]:
    if epc.sscc is not None:
        return {"sscc": epc.sscc}
    if epc.gtin is not None and epc.serial is not None:
        return {"gtin": epc.gtin, "serial": epc.serial}
    raise InvalidInput(f"{text!r} is a location, not an object", rule="epcis.bad_epc", epc=text)


def _epcs(values: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _malformed(f"{name} is a list of EPC strings")
    return [_object(parse_epc(v), v) for v in values]


def _kind(raw: Mapping[str, Any]) -> EventType:
    event_type = raw.get("type")
    if event_type not in ("ObjectEvent", "AggregationEvent"):
        raise InvalidInput(
            f"medtrace captures ObjectEvent and AggregationEvent, not {event_type!r}",
            rule="epcis.unsupported_event_type",
        )
    step = raw.get("bizStep")
    if not isinstance(step, str):
        raise InvalidInput("every event needs a CBV bizStep", rule="epcis.unknown_biz_step")
    disposition = raw.get("disposition")
    kind = event_type_for(
        bare(step, kind="bizStep"),
        bare(disposition, kind="disposition") if isinstance(disposition, str) else None,
    )
    if kind is None:
        raise InvalidInput(
            f"bizStep {step!r} is not one medtrace records", rule="epcis.unknown_biz_step"
        )
    shape = SHAPES[kind]
    if _observes_container(raw, kind):
        return kind
    if (event_type, raw.get("action")) != (shape.event_type, shape.action):
        raise InvalidInput(
            f"bizStep {shape.biz_step} is recorded as a {shape.event_type} with action "
            f"{shape.action}",
            rule="epcis.action",
        )
    return kind


def _observes_container(raw: Mapping[str, Any], kind: EventType) -> bool:
    """An AggregationEvent OBSERVE with an ObjectEvent's bizStep (a pallet received with its
    children scanned, EPCIS 2.0 §7.4.3): medtrace records it as that event on the parent."""
    return (
        raw.get("type") == "AggregationEvent"
        and raw.get("action") == "OBSERVE"
        and SHAPES[kind].event_type == "ObjectEvent"
    )


def check_fields(raw: Mapping[str, Any]) -> None:
    """Refuse an event carrying anything medtrace does not record (``epcis.unknown_field``,
    naming every such member by its path), and free text where medtrace expects a term.

    The event enters the public, permanent ledger as sent: a member medtrace ignores would be
    published forever, personal data included. So only the members in ``_EVENT_FIELDS`` and
    ``_NESTED_FIELDS`` pass (EPCIS user extensions too are refused for now), an ILMD only
    on a commissioning, and the terms medtrace does not parse elsewhere are checked here: a
    CBV disposition, source and destination types and parties, an eventID (a CBV 2.0 hash
    or a UUID URN) and a time zone offset.
    """
    unknown = list(set(raw) - _EVENT_FIELDS)
    for name, allowed in _NESTED_FIELDS.items():
        for position, entry in _entries(raw.get(name), name):
            unknown += (f"{position}.{key}" for key in set(entry) - allowed)
    if unknown:
        unknown.sort()
        raise InvalidInput(
            f"medtrace does not record {', '.join(unknown)}; the ledger is public and "
            "permanent, so send only the standard members medtrace reads",
            rule="epcis.unknown_field",
            fields=unknown,
        )
    _check_terms(raw)


def _entries(value: Any, name: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects under member ``name`` (one, or each of a list), with their paths."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [(name, value)]
    if isinstance(value, list) and name.endswith("List"):
        if not all(isinstance(entry, dict) for entry in value):
            raise _malformed(f"{name} is a list of objects")
        return [(f"{name}[{i}]", entry) for i, entry in enumerate(value)]
    raise _malformed(f"{name} is {'a list of objects' if name.endswith('List') else 'an object'}")


def _check_terms(raw: Mapping[str, Any]) -> None:
    disposition = raw.get("disposition")
    if disposition is not None and (
        not isinstance(disposition, str)
        or bare(disposition, kind="disposition") not in CBV_DISPOSITIONS
    ):
        raise InvalidInput(
            f"disposition {disposition!r} is not a CBV 2.0 disposition",
            rule="epcis.unknown_disposition",
        )
    for name, party in (("destinationList", "destination"), ("sourceList", "source")):
        for position, entry in _entries(raw.get(name), name):
            if entry.get("type") not in _PARTY_TYPES or not isinstance(entry.get(party), str):
                raise _malformed(f"{position} has a CBV 2.0 type and a {party} (a GLN)")
            parse_location(entry[party])
    _check_pattern(raw, "eventID", _EVENT_ID, "a CBV 2.0 event hash (ni:///sha-256;…) or urn:uuid")
    _check_pattern(raw, "eventTimeZoneOffset", _ZONE_OFFSET, "an offset such as +02:00")
    step = raw.get("bizStep")
    if "ilmd" in raw and not (
        isinstance(step, str) and bare(step, kind="bizStep") == "commissioning"
    ):
        raise InvalidInput(
            "medtrace records an ilmd (lot and expiry) only on a commissioning",
            rule="epcis.unknown_field",
            fields=["ilmd"],
        )


def _check_pattern(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> None:
    value = raw.get(name)
    if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise _malformed(f"{name} must be {what}")


def medtrace_events(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The medtrace events an EPCIS event stands for (one per EPC of an ObjectEvent)."""
    kind = _kind(raw)
    event_time = raw.get("eventTime")
    if not isinstance(event_time, str):
        raise _malformed("eventTime is an RFC 3339 string")
    gln = _location(raw, "readPoint") or _location(raw, "bizLocation")
    if gln is None:
        raise InvalidInput("name the readPoint (a GLN)", rule="epcis.missing_read_point")
    base: dict[str, Any] = {"type": kind.value, "gln": gln, "event_time": event_time}
    place = _location(raw, "bizLocation")
    if kind is EventType.STORE and place is not None and place != gln:
        base["location_gln"] = place
    if kind in TYPES_WITH_DESTINATION:
        base["destination_gln"] = _destination(raw)
    if kind is EventType.COMMISSION:
        base |= _ilmd(raw)
    if raw.get("type") == "AggregationEvent":
        parent = raw.get("parentID")
        if not isinstance(parent, str):
            raise _malformed("an AggregationEvent names its parentID (an SSCC)")
        base |= _object(parse_epc(parent), parent)
        children = _epcs(raw.get("childEPCs", []), "childEPCs")
        if children and not _observes_container(raw, kind):
            base["children"] = children
        return [base]
    return [base | ref for ref in _epcs(raw.get("epcList"), "epcList")]


def _prepare(events: Sequence[dict[str, Any]], gln: str) -> tuple[list[Authenticated], list[int]]:
    """Every event of the document, checked; and the document index of each."""
    items: list[Authenticated] = []
    origin: list[int] = []
    for index, raw in enumerate(events):
        try:
            check_fields(raw)
            for event in medtrace_events(raw):
                items.append(
                    token_authenticated(
                        source="epcis",
                        sent=raw,
                        event=event,
                        participant_gln=gln,
                        objects=[raw.get(name) or () for name in ("epcList", "childEPCs")],
                    )
                )
                origin.append(index)
        except MedtraceError as exc:
            exc.context.setdefault("index", index)
            raise
    return items, origin


def capture_document(
    *,
    session: Session,
    participant: Participant,
    document: Any,
    receipt_policy: ReceiptPolicy = ReceiptPolicy.REFUSE,
    min_transit: dt.timedelta = dt.timedelta(0),
) -> str:
    """Check an EPCISDocument (as ``json_document`` or ``xml_capture.document_from_xml``
    read it), capture it as one job (all or nothing) and return the job id.

    Raises ``InvalidInput`` (nothing written, no job) when the document is malformed; a
    custody refusal fails the job instead, which then names the rule and the event's index.
    A receipt sooner than ``min_transit`` after its shipment is accepted but suspect.
    """
    assert participant.id is not None
    items, origin = _prepare(document_events(document), participant.gln)
    capture_id = secrets.token_hex(16)
    created = utcnow()
    errors: list[dict[str, Any]] = []
    try:
        capture_authenticated(
            session=session,
            participant=participant,
            check=lambda: (items, None),
            receipt_policy=receipt_policy,
            min_transit=min_transit,
        )
    except MedtraceError as exc:
        if exc.rule == "store.conflict":
            raise
        detail = exc.detail()
        if isinstance(detail.get("index"), int):
            detail["index"] = origin[detail["index"]]
        errors.append(detail)
    with session.begin():
        session.add(
            CaptureJob(
                capture_id=capture_id,
                participant_id=participant.id,
                created_at=created,
                success=not errors,
                event_count=len(items),
                errors=json.dumps(errors),
            )
        )
    return capture_id


def get_job(*, session: Session, participant: Participant, capture_id: str) -> dict[str, Any]:
    """A capture job of ``participant`` as the REST binding shows it, or ``NotFound``."""
    job = session.get(CaptureJob, capture_id)
    if job is None or job.participant_id != participant.id:
        raise NotFound(f"no capture job {capture_id!r}", rule="epcis.unknown_capture")
    return {
        "captureID": job.capture_id,
        "createdAt": job.created_at.isoformat(),
        "finishedAt": job.finished_at.isoformat(),
        "running": False,
        "success": job.success,
        "captureErrorBehaviour": "rollback",
        "errors": json.loads(job.errors),
    }
