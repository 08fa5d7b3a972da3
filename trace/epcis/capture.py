"""EPCIS 2.0 capture (REST binding ``POST /capture`` and ``POST /events``): EPCIS events in,
medtrace events out, and each EPCIS event kept as sent.

A document is checked whole before anything is written: JSON-LD with the EPCIS 2.0 context,
an ``EPCISDocument`` (or an ``EPCISQueryDocument``, whose results the REST binding lets a
client capture as they are), ObjectEvents and AggregationEvents only, a CBV 2.0 bizStep
medtrace knows (and the action that goes with it), GS1 EPCs (EPC URNs or Digital Link URIs),
a readPoint GLN, times with a zone and not in the future, and only the members
``medtrace.epcis.members`` accepts. A document that fails is refused with a 4xx naming the
rule and the event's ``index``; nothing is written.

A valid document becomes a capture job, run at once with the ``rollback`` behaviour: the
custody rules apply to every event in order, as for station envelopes, and either all events
are recorded or none (the job then lists the refusal). Each ObjectEvent yields one medtrace
event per EPC. ``capture_event`` is the binding's synchronous capture of one event.

These events are authenticated by the participant's API token, not by a station key. Their
ledger leaf says so: it is the canonical JSON of ``{"epcis", "event", "participant"}`` and has
no ``signature`` or ``station_id``, so any reader can tell a token-captured event from a
station-signed one. ``epcis`` holds the EPCIS event's ``eventID`` and the SHA-256 of its
document as stored (``epcis_events``): the leaf is public and permanent, the document may
carry what is neither (sensor data, purchase orders, extensions), and whoever is shown it
can check it against the leaf. An event sent without an ``eventID`` gets a ``urn:uuid``
derived from its document and its sender, so a retry gets the same one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from medtrace.custody import ReceiptPolicy
from medtrace.epcis.document import CONTEXT
from medtrace.epcis.epc import Epc, parse_epc, parse_location
from medtrace.epcis.members import (
    EXPIRY_KEYS,
    LOT_KEYS,
    check_event_type,
    check_fields,
    extension_prefixes,
)
from medtrace.epcis.vocabulary import SHAPES, bare, event_type_for
from medtrace.errors import Conflict, InvalidInput, MedtraceError, NotFound, TooLarge
from medtrace.models import EventType, Participant, utcnow
from medtrace.models.epcis import CapturedEvent, CaptureJob
from medtrace.protocol.envelope import canonical_json
from medtrace.schemas.capture import TYPES_WITH_DESTINATION, CaptureResult
from medtrace.services.capture import (
    Authenticated,
    capture_authenticated,
    token_authenticated,
)
from medtrace.store import epcis_events as epcis_store

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_EVENTS = 10_000
#: Where each kind of document carries its events (EPCIS 2.0 §9.3; REST binding queries).
_EVENT_LISTS = {
    "EPCISDocument": ("epcisBody", "eventList"),
    "EPCISQueryDocument": ("epcisBody", "queryResults", "resultsBody", "eventList"),
}


@dataclass(frozen=True)
class Incoming:
    """The events of a document, with what their members are read against: the extension
    prefixes its ``@context`` declares, and its context entries beyond the EPCIS one (kept
    with each event, so its extension members keep their meaning)."""

    events: list[dict[str, Any]]
    prefixes: frozenset[str]
    contexts: list[Any]


@dataclass(frozen=True)
class Sent:
    """One EPCIS event as it is kept: its id, its JSON-LD document in the sender's member
    order (GS1's reference event hash depends on the order inside nested objects) and the
    SHA-256 of the document's RFC 8785 form, which each of its leaves holds."""

    event_id: str
    document: str
    digest: str


@dataclass(frozen=True)
class CaptureSettings:
    """How receipts are judged (``settings.capture``)."""

    receipt_policy: ReceiptPolicy = ReceiptPolicy.REFUSE
    min_transit: dt.timedelta = dt.timedelta(0)


def check_size(length: int) -> None:
    """Refuse a document larger than ``MAX_DOCUMENT_BYTES`` (before or after reading it)."""
    if length > MAX_DOCUMENT_BYTES:
        raise TooLarge(
            f"the document has {length} bytes; at most {MAX_DOCUMENT_BYTES}",
            rule="capture.too_large",
        )


def _malformed(message: str, **context: Any) -> InvalidInput:
    return InvalidInput(message, rule="epcis.malformed", **context)


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON-LD object from a request body, or ``InvalidInput`` naming what is wrong."""
    check_size(len(body))
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _malformed("an EPCIS document or event is a JSON object")
    return document


def _context(document: Mapping[str, Any]) -> Incoming:
    """The document's context checked, with no events yet."""
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    if CONTEXT not in contexts:
        raise InvalidInput(
            f"JSON-LD @context must include the EPCIS 2.0 context {CONTEXT}",
            rule="epcis.bad_context",
        )
    return Incoming([], extension_prefixes(context), [c for c in contexts if c != CONTEXT])


def read_document(document: Mapping[str, Any]) -> Incoming:
    """The events of an EPCISDocument or EPCISQueryDocument, or ``InvalidInput``."""
    incoming = _context(document)
    path = _EVENT_LISTS.get(document.get("type"))  # type: ignore[arg-type]
    if path is None:
        raise _malformed(f"type is {document.get('type')!r}, not one of {sorted(_EVENT_LISTS)}")
    events: Any = document
    for name in path:
        events = events.get(name) if isinstance(events, dict) else None
    if not isinstance(events, list) or not events:
        raise _malformed(f"{'.'.join(path)} must be a non-empty list")
    if len(events) > MAX_EVENTS:
        raise InvalidInput(f"at most {MAX_EVENTS} events per document", rule="capture.too_large")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise _malformed("an event is a JSON object", index=index)
    return Incoming(events, incoming.prefixes, incoming.contexts)


def read_event(document: Mapping[str, Any]) -> Incoming:
    """The one event of a single-event capture (an EPCIS event with its ``@context``)."""
    incoming = _context(document)
    event = {name: value for name, value in document.items() if name != "@context"}
    return Incoming([event], incoming.prefixes, incoming.contexts)


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
        for field, keys in (("lot", LOT_KEYS), ("expiry", EXPIRY_KEYS)):
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
    check_event_type(raw)
    event_type = raw.get("type")
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
    if event_type != shape.event_type or not shape.accepts(raw.get("action")):
        actions = " or ".join(sorted({shape.action, *shape.other_actions}))
        raise InvalidInput(
            f"bizStep {shape.biz_step} is recorded as a {shape.event_type} with action {actions}",
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
    objects = _epcs(raw.get("epcList"), "epcList")
    if not objects:
        raise _malformed("an ObjectEvent lists the EPCs it is about (epcList)")
    return [base | ref for ref in objects]


def _kept(raw: Mapping[str, Any], incoming: Incoming, participant_gln: str) -> Sent:
    """The event as stored, under its own eventID or one derived from it and its sender."""
    context = [CONTEXT, *incoming.contexts]
    event_id = raw.get("eventID")
    if not isinstance(event_id, str):
        seed = canonical_json({"@context": context, "event": raw, "participant": participant_gln})
        event_id = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(seed).hexdigest())}"
        raw = {"eventID": event_id, **raw}
    kept = {"@context": context, **raw}
    digest = hashlib.sha256(canonical_json(kept)).hexdigest()
    return Sent(event_id, json.dumps(kept, ensure_ascii=False, separators=(",", ":")), digest)


def _prepare(incoming: Incoming, gln: str) -> _Prepared:
    """Every event of the document, checked (``InvalidInput`` with its ``index``)."""
    items: list[Authenticated] = []
    origin: list[int] = []
    kept: list[Sent] = []
    seen: set[str] = set()
    for index, raw in enumerate(incoming.events):
        try:
            check_fields(raw, incoming.prefixes)
            sent = _kept(raw, incoming, gln)
            if sent.event_id in seen:
                raise _malformed(f"the document has eventID {sent.event_id!r} twice")
            seen.add(sent.event_id)
            events = medtrace_events(raw)
            if len({json.dumps(e, sort_keys=True) for e in events}) < len(events):
                raise _malformed("an EPC is listed twice (in one form or another)")
            for event in events:
                items.append(
                    token_authenticated(
                        source="epcis",
                        sent={"eventID": sent.event_id, "sha256": sent.digest},
                        event=event,
                        participant_gln=gln,
                        epcis_id=sent.event_id,
                    )
                )
                origin.append(index)
            kept.append(sent)
        except MedtraceError as exc:
            exc.context.setdefault("index", index)
            raise
    return _Prepared(items, origin, kept)


def _keep(kept: Sequence[Sent], participant_id: int) -> Callable[[Session], None]:
    """Write the EPCIS events as sent, beside their medtrace events: each new one; one
    captured before by the same participant with the same document is a retry. An eventID
    that some other event already carries is refused (``epcis.duplicate_event``)."""

    def write(session: Session) -> None:
        ids = [sent.event_id for sent in kept]
        stored = epcis_store.get_captured(session=session, event_ids=ids)
        taken = epcis_store.ids_in_use(session=session, event_ids=set(ids) - set(stored))
        new = []
        for index, sent in enumerate(kept):
            row = stored.get(sent.event_id)
            if row is None and sent.event_id not in taken:
                new.append(
                    CapturedEvent(
                        event_id=sent.event_id,
                        participant_id=participant_id,
                        digest=sent.digest,
                        document=sent.document,
                    )
                )
            elif row is None or (row.participant_id, row.digest) != (participant_id, sent.digest):
                raise Conflict(
                    f"an event with eventID {sent.event_id!r} was captured before",
                    rule="epcis.duplicate_event",
                    index=index,
                )
        epcis_store.add_captured(session=session, rows=new)

    return write


@dataclass(frozen=True)
class _Prepared:
    """A checked document: its medtrace events, the document index of each, and the EPCIS
    events as they will be kept."""

    items: list[Authenticated]
    origin: list[int]
    kept: list[Sent]


def _run(
    session: Session, participant: Participant, prepared: _Prepared, settings: CaptureSettings
) -> list[CaptureResult]:
    """Capture the prepared events all or none; a refusal raises with ``index``, the event's
    index in the document."""
    assert participant.id is not None
    try:
        return capture_authenticated(
            session=session,
            participant=participant,
            check=lambda: (prepared.items, None),
            receipt_policy=settings.receipt_policy,
            min_transit=settings.min_transit,
            also_write=_keep(prepared.kept, participant.id),
        )
    except MedtraceError as exc:
        index = exc.context.get("index")
        if exc.rule != "epcis.duplicate_event" and isinstance(index, int):
            exc.context["index"] = prepared.origin[index]
        raise


def capture_document(
    *,
    session: Session,
    participant: Participant,
    document: Mapping[str, Any],
    settings: CaptureSettings,
) -> str:
    """Check an EPCISDocument (parsed JSON-LD, as ``parse_json`` or
    ``xml_capture.document_from_xml`` read it), capture it as one job (all or nothing) and
    return the job id.

    Raises ``InvalidInput`` (nothing written, no job) when the document is malformed; a
    custody refusal fails the job instead, which then names the rule and the event's index.
    A receipt sooner than ``settings.min_transit`` after its shipment is accepted but suspect.
    """
    assert participant.id is not None
    prepared = _prepare(read_document(document), participant.gln)
    capture_id = secrets.token_hex(16)
    created = utcnow()
    errors: list[dict[str, Any]] = []
    try:
        _run(session, participant, prepared, settings)
    except MedtraceError as exc:
        if exc.rule == "store.conflict":
            raise
        errors.append(exc.detail())
    with session.begin():
        session.add(
            CaptureJob(
                capture_id=capture_id,
                participant_id=participant.id,
                created_at=created,
                success=not errors,
                event_count=len(prepared.items),
                errors=json.dumps(errors),
            )
        )
    return capture_id


def capture_event(
    *,
    session: Session,
    participant: Participant,
    document: Mapping[str, Any],
    settings: CaptureSettings,
) -> str:
    """Capture one EPCIS event (with its ``@context``) at once and return its eventID.

    Every refusal raises, custody ones included; an event whose eventID was captured before
    (a retry included, as the REST binding says) is ``epcis.duplicate_event``.
    """
    prepared = _prepare(read_event(document), participant.gln)
    results = _run(session, participant, prepared, settings)
    event_id = prepared.kept[0].event_id
    if any(result.duplicate for result in results):
        raise Conflict(
            f"an event with eventID {event_id!r} was captured before",
            rule="epcis.duplicate_event",
        )
    return event_id


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
