"""Which members a captured EPCIS event may carry, and which of them every reader sees.

A captured event is kept as sent in the store (``epcis_events``), not on the public ledger,
so medtrace accepts what EPCIS 2.0 defines for the events it records (sensor data,
business transactions, certification info, persistent dispositions, error declarations)
and the sender's extension members (``prefix:name`` with the prefix declared in the
document's ``@context``), and returns them to those entitled to them. It still refuses:

- a member that is neither standard nor a declared extension (``epcis.unknown_field``:
  a typo, or free text that has no place in an event);
- quantities of a class (``quantityList``, ``childQuantityList``: ``epcis.quantity_list``):
  medtrace's custody is per instance, so it cannot record "40 of this lot";
- free text where a term is expected (disposition, source and destination types,
  eventID, time zone offset).

``public_view`` is what any other participant reads: the members of the custody record,
the ones a leaf of the ledger held before events were kept in the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from medtrace.epcis.epc import parse_location
from medtrace.epcis.vocabulary import CBV_DISPOSITIONS, bare
from medtrace.errors import InvalidInput

LOT_KEYS = ("cbvmda:lotNumber", "lotNumber")
EXPIRY_KEYS = ("cbvmda:itemExpirationDate", "itemExpirationDate")
#: The prefixes the EPCIS 2.0 context defines (and CBV master data, which it leaves to
#: senders but medtrace reads): members under them need no declaration.
STANDARD_PREFIXES = frozenset({"epcis", "cbv", "gs1", "cbvmda"})
#: The members of the custody record: what every reader sees (``public_view``).
_PUBLIC = {
    "type": None, "eventID": None, "eventTime": None, "eventTimeZoneOffset": None,
    "action": None, "bizStep": None, "disposition": None, "epcList": None,
    "parentID": None, "childEPCs": None,
    "readPoint": frozenset({"id"}),
    "bizLocation": frozenset({"id"}),
    "destinationList": frozenset({"type", "destination"}),
    "sourceList": frozenset({"type", "source"}),
    "ilmd": frozenset(LOT_KEYS + EXPIRY_KEYS),
}  # fmt: skip
#: EPCIS 2.0 members of ObjectEvents and AggregationEvents kept for those entitled to them.
_PRIVATE = frozenset(
    {
        "recordTime", "certificationInfo", "errorDeclaration", "persistentDisposition",
        "bizTransactionList", "sensorElementList",
    }
)  # fmt: skip
_CLASS_LEVEL = frozenset({"quantityList", "childQuantityList"})
#: The standard members of each nested object (extensions are allowed in each).
_NESTED = {
    "readPoint": frozenset({"id"}),
    "bizLocation": frozenset({"id"}),
    "destinationList": frozenset({"type", "destination"}),
    "sourceList": frozenset({"type", "source"}),
    "bizTransactionList": frozenset({"type", "bizTransaction"}),
    "ilmd": frozenset(),
}
#: CBV 2.0 §7.4 source/destination types, bare or as the CBV 2.0 web URI, its compact
#: form or 1.x URN.
_PARTY_TYPES = frozenset(
    f"{prefix}{term}"
    for term in ("owning_party", "possessing_party", "location")
    for prefix in ("", "https://ref.gs1.org/cbv/SDT-", "cbv:SDT-", "urn:epcglobal:cbv:sdt:")
)
_EVENT_ID = re.compile(
    r"ni:///sha-256;[0-9a-f]{64}(\?ver=CBV2\.0)?|urn:uuid:[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)
_ZONE_OFFSET = re.compile(r"[+-](0\d|1[0-4]):[0-5]\d")


def _malformed(message: str) -> InvalidInput:
    return InvalidInput(message, rule="epcis.malformed")


def extension_prefixes(context: object) -> frozenset[str]:
    """The prefixes an EPCISDocument's ``@context`` declares (its objects' string members),
    with the standard ones."""
    entries = context if isinstance(context, list) else [context]
    declared = (
        name
        for entry in entries
        if isinstance(entry, dict)
        for name, value in entry.items()
        if isinstance(value, str)
    )
    return STANDARD_PREFIXES | frozenset(declared)


def _is_extension(name: str, prefixes: frozenset[str]) -> bool:
    prefix, colon, rest = name.partition(":")
    return bool(colon and rest) and prefix in prefixes


def check_event_type(raw: Mapping[str, Any]) -> None:
    """Refuse the event types medtrace does not record (``epcis.unsupported_event_type``)."""
    event_type = raw.get("type")
    if event_type not in ("ObjectEvent", "AggregationEvent"):
        raise InvalidInput(
            f"medtrace captures ObjectEvent and AggregationEvent, not {event_type!r}",
            rule="epcis.unsupported_event_type",
        )


def check_fields(raw: Mapping[str, Any], prefixes: frozenset[str]) -> None:
    """Refuse an event of a type medtrace does not record, or carrying a member that is
    neither standard nor a declared extension (``epcis.unknown_field``, naming each by its
    path), quantities of a class, and free text where medtrace expects a term."""
    check_event_type(raw)
    unknown = [
        name
        for name in raw
        if name not in _PUBLIC and name not in _PRIVATE and name not in _CLASS_LEVEL
        if not _is_extension(name, prefixes)
    ]
    for name, allowed in _NESTED.items():
        for position, entry in _entries(raw.get(name), name):
            unknown += (
                f"{position}.{key}"
                for key in entry
                if key not in allowed and not _is_extension(key, prefixes)
            )
    if unknown:
        unknown.sort()
        raise InvalidInput(
            f"medtrace does not record {', '.join(unknown)}: send the members EPCIS 2.0 "
            "defines, and extensions under a prefix the document's @context declares",
            rule="epcis.unknown_field",
            fields=unknown,
        )
    quantities = sorted(_CLASS_LEVEL & set(raw))
    if quantities:
        raise InvalidInput(
            f"medtrace records serialised objects, not quantities of a class ({quantities[0]})",
            rule="epcis.quantity_list",
            fields=quantities,
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
    for position, entry in _entries(raw.get("bizTransactionList"), "bizTransactionList"):
        if not isinstance(entry.get("bizTransaction"), str):
            raise _malformed(f"{position} names its bizTransaction (a URI)")
    _check_list(raw, "sensorElementList", dict, "a list of objects")
    _check_list(raw, "certificationInfo", str, "a URI or a list of URIs")
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


def _check_list(raw: Mapping[str, Any], name: str, kind: type, what: str) -> None:
    value = raw.get(name)
    if value is None or (kind is str and isinstance(value, str)):
        return
    if not (isinstance(value, list) and all(isinstance(item, kind) for item in value)):
        raise _malformed(f"{name} is {what}")


def _check_pattern(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> None:
    value = raw.get(name)
    if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise _malformed(f"{name} must be {what}")


def parties(event: Mapping[str, Any]) -> frozenset[str]:
    """The GLNs an event names as its sources and destinations (checked at capture)."""
    found = set()
    for name, party in (("destinationList", "destination"), ("sourceList", "source")):
        for entry in event.get(name) or ():
            found.add(parse_location(entry[party]))
    return frozenset(found)


def public_view(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as any participant may read it: the members of the custody record."""
    view: dict[str, Any] = {}
    for name, value in event.items():
        if name in _PUBLIC:
            allowed = _PUBLIC[name]
            view[name] = value if allowed is None else _only(value, allowed)
    return view


def _only(value: Any, allowed: Iterable[str]) -> Any:
    keep = frozenset(allowed)
    if isinstance(value, list):
        return [{k: v for k, v in entry.items() if k in keep} for entry in value]
    return {k: v for k, v in value.items() if k in keep}
