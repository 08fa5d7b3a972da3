"""medtrace events as EPCIS 2.0 JSON-LD events, and the documents that carry them.

One function per direction of the mapping in ``vocabulary``: ``to_epcis`` writes a recorded
event (as its station signed it) as an ObjectEvent or AggregationEvent; the documents are an
``EPCISDocument`` (EPCIS 2.0 §9.3, for export) and an ``EPCISQueryDocument`` (the REST query
answer). Every event carries its CBV 2.0 hash as ``eventID``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from medtrace.epcis.epc import gln_uri, lot_uri, sscc_uri, unit_uri
from medtrace.epcis.hashing import event_hash
from medtrace.epcis.vocabulary import RECALL_SHAPE, SHAPES
from medtrace.models import EventType
from medtrace.schemas.capture import ObjectRef, SignedEvent

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: No bizLocation: the goods are leaving the place (EPCIS 2.0 §7.3.6: where they are after).
_LEAVING = frozenset({EventType.SHIP, EventType.RETURN, EventType.EXPORT})


def object_uri(ref: ObjectRef) -> str:
    """The EPC of a unit or container."""
    if ref.sscc is not None:
        return sscc_uri(ref.sscc)
    assert ref.gtin is not None and ref.serial is not None
    return unit_uri(ref.gtin, ref.serial)


def biz_location(event: SignedEvent) -> str | None:
    """The GLN where the objects are after the event (None while they travel)."""
    if event.type in _LEAVING:
        return None
    return event.location_gln or event.gln


def _offset(event_time: str) -> str:
    offset = dt.datetime.fromisoformat(event_time).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def to_epcis(event: SignedEvent, event_time: str) -> dict[str, Any]:
    """The EPCIS 2.0 event of a medtrace event; ``event_time`` is the time as signed."""
    shape = SHAPES[event.type]
    body: dict[str, Any] = {
        "type": shape.event_type,
        "eventTime": event_time,
        "eventTimeZoneOffset": _offset(event_time),
    }
    if shape.event_type == "AggregationEvent":
        body["parentID"] = object_uri(event)
        if event.children:
            body["childEPCs"] = [object_uri(child) for child in event.children]
    else:
        body["epcList"] = [object_uri(event)]
    body |= {
        "action": shape.action,
        "bizStep": shape.biz_step,
        "disposition": shape.disposition,
        "readPoint": {"id": gln_uri(event.gln)},
    }
    location = biz_location(event)
    if location is not None:
        body["bizLocation"] = {"id": gln_uri(location)}
    if event.destination_gln is not None:
        body["sourceList"] = [{"type": "owning_party", "source": gln_uri(event.gln)}]
        body["destinationList"] = [
            {"type": "owning_party", "destination": gln_uri(event.destination_gln)}
        ]
    if event.lot is not None and event.type is EventType.COMMISSION:
        body["ilmd"] = {"cbvmda:lotNumber": event.lot}
        if event.expiry is not None:
            body["ilmd"]["cbvmda:itemExpirationDate"] = event.expiry.isoformat()
    return {"eventID": event_hash(body), **body}


def recall_to_epcis(*, gtin: str, lot: str, gln: str, event_time: str) -> dict[str, Any]:
    """The EPCIS 2.0 event of a recall: the lot as an EPC class, disposition ``recalled``
    (CBV 2.0), read at the recalling participant's GLN."""
    shape = RECALL_SHAPE
    body: dict[str, Any] = {
        "type": shape.event_type,
        "eventTime": event_time,
        "eventTimeZoneOffset": _offset(event_time),
        "quantityList": [{"epcClass": lot_uri(gtin, lot)}],
        "action": shape.action,
        "bizStep": shape.biz_step,
        "disposition": shape.disposition,
        "readPoint": {"id": gln_uri(gln)},
    }
    return {"eventID": event_hash(body), **body}


def epcis_document(events: Sequence[dict[str, Any]], *, created: dt.datetime) -> dict[str, Any]:
    """An EPCIS 2.0 EPCISDocument (JSON-LD) carrying ``events``."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "epcisBody": {"eventList": list(events)},
    }


def query_document(
    events: Sequence[dict[str, Any]],
    *,
    created: dt.datetime,
    contexts: Sequence[Any] = (),
    query_name: str = "SimpleEventQuery",
    subscription_id: str | None = None,
) -> dict[str, Any]:
    """An EPCISQueryDocument: the answer of ``GET /epcis/events`` and of a named query
    (REST binding), and what a subscription is pushed (naming its ``subscriptionID``);
    ``contexts`` are the senders' own context entries (their extension prefixes)."""
    results: dict[str, Any] = {"queryName": query_name}
    if subscription_id is not None:
        results["subscriptionID"] = subscription_id
    return {
        "@context": [CONTEXT, *contexts],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "epcisBody": {"queryResults": {**results, "resultsBody": {"eventList": list(events)}}},
    }
