"""An EPCIS 2.0 JSON-LD EPCISQueryDocument written as EPCIS 2.0 XML (``Accept:
application/xml`` on the query routes), valid against the official 2.0 query XSD.

It converts whatever the JSON query answers, so the two forms cannot drift apart: members are
written as elements of the same name in the order the XSD's sequences fix (``_ORDER``), CBV
terms that JSON-LD may write as bare words (``shipping``) as the CBV 2.0 web URIs the XML
binding needs (``_VOCABULARY``),
arrays as their wrapper lists (``xml_binding.LIST_ITEMS``), ``prefix:name`` members as
elements of the namespace the ``@context`` (or the EPCIS context) gives the prefix, and
inside such an extension element every member as it comes. All five EPCIS 2.0 event types
have an order, though medtrace captures ObjectEvents and AggregationEvents only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

from medtrace.epcis.vocabulary import BIZ_STEP_URI, DISPOSITION_URI
from medtrace.epcis.xml_binding import (
    ATTRIBUTE_OBJECTS,
    EPCIS_2_0,
    KNOWN_NAMESPACES,
    LIST_ITEMS,
    QUERY_2_0,
    REPEATED,
    TEXT_MEMBERS,
)

_BASE = ("eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "errorDeclaration",
         "certificationInfo")  # fmt: skip
_AFTER_WHERE = ("readPoint", "bizLocation", "bizTransactionList")
#: The order of each element's children in the EPCIS 2.0 XSD (extensions follow).
_ORDER: dict[str, tuple[str, ...]] = {
    "ObjectEvent": (
        *_BASE, "epcList", "action", "bizStep", "disposition", *_AFTER_WHERE, "quantityList",
        "sourceList", "destinationList", "sensorElementList", "persistentDisposition", "ilmd",
    ),
    "AggregationEvent": (
        *_BASE, "parentID", "childEPCs", "action", "bizStep", "disposition", *_AFTER_WHERE,
        "childQuantityList", "sourceList", "destinationList", "sensorElementList",
        "persistentDisposition",
    ),
    "TransactionEvent": (
        *_BASE, "bizTransactionList", "parentID", "epcList", "action", "bizStep", "disposition",
        "readPoint", "bizLocation", "quantityList", "sourceList", "destinationList",
        "sensorElementList", "persistentDisposition",
    ),
    "TransformationEvent": (
        *_BASE, "inputEPCList", "inputQuantityList", "outputEPCList", "outputQuantityList",
        "transformationID", "bizStep", "disposition", *_AFTER_WHERE, "sourceList",
        "destinationList", "sensorElementList", "persistentDisposition", "ilmd",
    ),
    "AssociationEvent": (
        *_BASE, "parentID", "childEPCs", "childQuantityList", "action", "bizStep",
        "disposition", *_AFTER_WHERE, "sourceList", "destinationList", "sensorElementList",
        "persistentDisposition",
    ),
    "errorDeclaration": ("declarationTime", "reason", "correctiveEventIDs"),
    "readPoint": ("id",),
    "bizLocation": ("id",),
    "quantityElement": ("epcClass", "quantity", "uom"),
    "sensorElement": ("sensorMetadata", "sensorReport"),
    "persistentDisposition": ("unset", "set"),
    "ilmd": (),
}  # fmt: skip


_CBV = "https://ref.gs1.org/cbv/"
#: An XML namespace prefix (an NCName; Unicode letters included).
_NCNAME = re.compile(r"[^\W\d][\w.-]*")
#: Where JSON-LD may write a bare CBV term, the web URI prefix that XML needs (by member, or
#: by the element that carries a ``type`` attribute).
_VOCABULARY = {
    "bizStep": BIZ_STEP_URI,
    "disposition": DISPOSITION_URI,
    "set": DISPOSITION_URI,
    "unset": DISPOSITION_URI,
    "reason": f"{_CBV}ER-",
    "source": f"{_CBV}SDT-",
    "destination": f"{_CBV}SDT-",
    "bizTransaction": f"{_CBV}BTT-",
}


def query_document_xml(document: Mapping[str, Any]) -> bytes:
    """The EPCIS 2.0 XML form of a JSON-LD EPCISQueryDocument (``document.query_document``).

    Raises ``ValueError`` for a member with no XML form: an event type medtrace does not
    capture, a prefix the ``@context`` does not declare as a namespace, a member name that is
    no XML name, or a captured member of a shape the XML binding does not have (events are
    answered as they were captured, and JSON-LD allows more than XML)."""
    namespaces = {"cbv": _CBV, **KNOWN_NAMESPACES, **_declared(document.get("@context"))}
    root = etree.Element(
        etree.QName(QUERY_2_0, "EPCISQueryDocument"),
        nsmap={"epcisq": QUERY_2_0, "epcis": EPCIS_2_0, **namespaces},
        schemaVersion="2.0",
        creationDate=str(document["creationDate"]),
    )
    results = document["epcisBody"]["queryResults"]
    answer = etree.SubElement(
        etree.SubElement(root, "EPCISBody"), etree.QName(QUERY_2_0, "QueryResults")
    )
    etree.SubElement(answer, "queryName").text = str(results["queryName"])
    events = etree.SubElement(etree.SubElement(answer, "resultsBody"), "EventList")
    for event in results["resultsBody"]["eventList"]:
        _write_object(events, str(event["type"]), event, namespaces)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _declared(context: Any) -> dict[str, str]:
    """The prefixes a JSON-LD ``@context`` declares inline, as XML namespaces: the senders'
    context entries a query answer carries (``query_document``), so a captured event's
    extension members are written in their namespaces. A prefix that is no XML prefix, or a
    value that is no namespace, is left out (a member under it then has no XML form)."""
    found: dict[str, str] = {}
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            found |= {
                k: v
                for k, v in entry.items()
                if _NCNAME.fullmatch(k) and not k.lower().startswith("xml")
                if isinstance(v, str) and ":" in v and _is_namespace(v)
            }
    return found


def _is_namespace(uri: str) -> bool:
    try:
        etree.Element("x", nsmap={"x": uri})
    except ValueError:
        return False
    return True


def _tag(key: str, namespaces: Mapping[str, str]) -> str:
    if ":" not in key:
        return key
    prefix, name = key.split(":", 1)
    if prefix not in namespaces:
        raise ValueError(f"no namespace for the prefix of {key!r}")
    return etree.QName(namespaces[prefix], name).text


def _write_object(
    parent: etree._Element,
    key: str,
    value: Mapping[str, Any],
    namespaces: Mapping[str, str],
    *,
    free: bool = False,
) -> None:
    """``value`` as element ``key``: its members in the XSD's order, or, inside an extension
    (``free``), in the order given."""
    free = free or ":" in key
    if key not in _ORDER and not free:
        raise ValueError(f"no EPCIS 2.0 XML form for {key!r}")
    element = etree.SubElement(parent, _tag(key, namespaces))
    if free:
        for name, member in value.items():
            _write(element, name, member, namespaces, free=True)
        return
    known = [name for name in _ORDER[key] if name in value]
    extensions = [name for name in value if ":" in name]
    unknown = set(value) - set(known) - set(extensions) - {"type"}
    if unknown:
        raise ValueError(f"no EPCIS 2.0 XML form for {sorted(unknown)} in {key}")
    for name in (*known, *extensions):
        _write(element, name, value[name], namespaces)


def _write(
    parent: etree._Element,
    key: str,
    value: Any,
    namespaces: Mapping[str, str],
    *,
    free: bool = False,
) -> None:
    if key in LIST_ITEMS:
        if not isinstance(value, list):
            raise ValueError(f"no EPCIS 2.0 XML form for {key!r} that is not a list")
        wrapper = etree.SubElement(parent, key)
        for item in value:
            _write(wrapper, LIST_ITEMS[key], item, namespaces)
    elif isinstance(value, list):
        if key not in REPEATED and ":" not in key and not free:
            raise ValueError(f"no EPCIS 2.0 XML form for the list {key!r}")
        for item in value:
            _write(parent, key, item, namespaces, free=free)
    elif key in TEXT_MEMBERS and isinstance(value, Mapping):
        element = etree.SubElement(parent, key, _attributes(value, namespaces, skip=key))
        element.text = _text(value[key])
        if "type" in value:
            element.set("type", _term(key, value["type"]))
    elif key in ATTRIBUTE_OBJECTS:
        if not isinstance(value, Mapping):
            raise ValueError(f"no EPCIS 2.0 XML form for {key!r} that is not an object")
        etree.SubElement(parent, key, _attributes(value, namespaces))
    elif isinstance(value, Mapping):
        _write_object(parent, key, value, namespaces, free=free)
    else:
        etree.SubElement(parent, _tag(key, namespaces)).text = _term(key, _text(value))


def _term(key: str, term: Any) -> str:
    """A CBV term as XML writes it: the web URI for a bare word, anything else as is."""
    value = _text(term)
    prefix = _VOCABULARY.get(key)
    return f"{prefix}{value}" if prefix and ":" not in value else value


def _attributes(
    value: Mapping[str, Any], namespaces: Mapping[str, str], *, skip: str = ""
) -> dict[str, str]:
    return {_tag(k, namespaces): _text(v) for k, v in value.items() if k != skip}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
