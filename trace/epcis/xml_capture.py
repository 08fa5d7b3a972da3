"""EPCIS XML documents (1.2 and 2.0, with or without the Standard Business Document Header)
as the EPCIS 2.0 JSON-LD document that JSON capture takes.

Most DSCSA and EU FMD partners send EPCIS 1.2 XML, some 2.0 XML. Rather than a second
capture pipeline, an XML document is checked and rewritten into the JSON-LD document a JSON
sender would have posted; from there it takes the one path (``capture.read_document`` and
``capture.capture_document``), so identity, custody and the refusal of members medtrace does
not record are the same, with the same named rules.

Before that, three XML-only checks, each refused with a named rule and nothing written:

- ``epcis.malformed``: not well-formed XML (with its ``line``), or not an EPCISDocument;
- ``epcis.xml_limit``: beyond libxml2's guards (entity amplification as in billion laughs,
  entity loops, nesting deeper than 256, huge text nodes);
- ``epcis.xml_doctype``: a document type definition that declares anything or names an
  external DTD. EPCIS needs none, and entity tricks (billion laughs, external entities) need
  one; the parser neither loads nor expands them anyway. A bare ``<!DOCTYPE x>``, which some
  of GS1's own examples carry, passes;
- ``epcis.xsd_invalid``: a violation of the official XSD of the document's version (its
  ``line`` and ``element``, as an XPath).

The mapping is the one of the EPCIS 2.0 XML and JSON-LD bindings: elements become members of
the same name; an EPCIS 1.2 ``extension`` (and 2.0 ``baseExtension``) wrapper is transparent,
which puts 1.2's nested fields (sourceList, ilmd, eventID, …) where 2.0 has them; wrapper
lists become arrays; ``source``, ``destination`` and ``bizTransaction`` become objects with
their ``type``; an element of another namespace becomes ``prefix:name`` with the prefix
declared in the ``@context`` (the sender's, or ``ext`` for a default namespace; numbered,
``a2``, when another namespace or the EPCIS context holds it, as captured events are kept in
this JSON-LD). The header (SBDH, master data) is validated and left out, as
the JSON path leaves ``epcisHeader`` out.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from medtrace.epcis.capture import check_size
from medtrace.epcis.document import CONTEXT
from medtrace.epcis.members import STANDARD_PREFIXES
from medtrace.epcis.xml_binding import (
    ATTRIBUTE_OBJECTS,
    BOOLEANS,
    EPCIS_1_2,
    EPCIS_2_0,
    KNOWN_NAMESPACES,
    LIST_ITEMS,
    NUMBERS,
    REPEATED,
    TEXT_MEMBERS,
    safe_parser,
    schema,
)
from medtrace.errors import InvalidInput

_PREFIX_OF = {namespace: prefix for prefix, namespace in KNOWN_NAMESPACES.items()}
_TRANSPARENT = frozenset({"extension", "baseExtension"})
#: Prefixes the EPCIS 2.0 context defines: an extension namespace never takes one.
_RESERVED = STANDARD_PREFIXES
#: libxml2's guards: entity amplification (billion laughs), entity loops, depth, text size.
_LIMITS = frozenset({etree.ErrorTypes.ERR_RESOURCE_LIMIT, etree.ErrorTypes.ERR_ENTITY_LOOP})


def document_from_xml(body: bytes) -> dict[str, Any]:
    """The JSON-LD EPCISDocument an EPCIS XML document stands for.

    Raises ``InvalidInput`` (rules above; ``capture.too_large`` beyond the size limit)."""
    check_size(len(body))
    root = _parse(body)
    name = etree.QName(root)
    if name.localname != "EPCISDocument" or name.namespace not in (EPCIS_1_2, EPCIS_2_0):
        raise InvalidInput(
            f"the root element is {name.text}; EPCIS XML capture takes an EPCISDocument "
            f"in {EPCIS_1_2} (1.2) or {EPCIS_2_0} (2.0)",
            rule="epcis.malformed",
        )
    _validate(root, name.namespace)
    extensions: dict[str, str] = {}
    body_element = root.find("EPCISBody")
    event_list = None if body_element is None else body_element.find("EventList")
    events = [] if event_list is None else [_event(e, extensions) for e in _children(event_list)]
    return {
        "@context": [CONTEXT, extensions] if extensions else [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": root.get("creationDate"),
        "epcisBody": {"eventList": events},
    }


def _parse(body: bytes) -> etree._Element:
    try:
        tree = etree.ElementTree(etree.fromstring(body, parser=safe_parser()))
    except etree.XMLSyntaxError as exc:
        if exc.code in _LIMITS:
            raise InvalidInput(
                f"the document exceeds the XML parser's limits: {exc.msg}",
                rule="epcis.xml_limit",
                line=exc.lineno,
            ) from exc
        raise InvalidInput(
            f"the body is not well-formed XML: {exc.msg}",
            rule="epcis.malformed",
            line=exc.lineno,
        ) from exc
    info = tree.docinfo
    dtd = info.internalDTD
    declares = dtd is not None and (any(dtd.iterentities()) or any(dtd.iterelements()))
    if declares or info.system_url or info.public_id:
        raise InvalidInput(
            "EPCIS XML needs no document type definition: one that declares entities or "
            "elements, or names an external DTD, is refused",
            rule="epcis.xml_doctype",
        )
    return tree.getroot()


def _validate(root: etree._Element, namespace: str) -> None:
    checker = schema(namespace)
    if checker.validate(root):
        return
    error = checker.error_log[0]
    raise InvalidInput(
        f"line {error.line}: {error.message}",
        rule="epcis.xsd_invalid",
        line=error.line,
        element=error.path,
    )


def _children(element: etree._Element) -> list[etree._Element]:
    """The child elements, with unqualified extension wrappers replaced by their content."""
    found: list[etree._Element] = []
    for child in element:
        if not isinstance(child.tag, str):  # an unexpanded entity reference
            continue
        if child.tag in _TRANSPARENT:
            found.extend(_children(child))
        else:
            found.append(child)
    return found


def _key(qname: etree.QName, extensions: dict[str, str], prefix: str | None) -> str:
    """The JSON-LD member name of an element or attribute."""
    if qname.namespace is None:
        return qname.localname
    known = _PREFIX_OF.get(qname.namespace) or _prefix(qname.namespace, prefix, extensions)
    return f"{known}:{qname.localname}"


def _prefix(namespace: str, wanted: str | None, extensions: dict[str, str]) -> str:
    """The JSON-LD prefix of an extension namespace: the sender's XML prefix, unless the
    document already gave it another namespace (XML lets each element declare its own) or
    the EPCIS context defines it; then the first free ``prefix2``, ``prefix3``, … Captured
    events are kept as this JSON-LD, so two namespaces must never share a prefix."""
    base = wanted or "ext"
    candidate, number = base, 1
    while extensions.get(candidate, namespace) != namespace or candidate in _RESERVED:
        number += 1
        candidate = f"{base}{number}"
    extensions[candidate] = namespace
    return candidate


def _event(element: etree._Element, extensions: dict[str, str]) -> dict[str, Any]:
    return {"type": etree.QName(element).localname, **_members(element, extensions)}


def _members(element: etree._Element, extensions: dict[str, str]) -> dict[str, Any]:
    members: dict[str, Any] = {
        _key(etree.QName(name), extensions, None): _scalar(etree.QName(name).localname, value)
        for name, value in element.attrib.items()
    }
    for child in _children(element):
        key = _key(etree.QName(child), extensions, child.prefix)
        value = _value(child, key, extensions)
        if key in REPEATED:
            members.setdefault(key, []).append(value)
        elif key in members:  # a repeated extension element
            previous = members[key]
            members[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            members[key] = value
    return members


def _value(element: etree._Element, key: str, extensions: dict[str, str]) -> Any:
    if key in LIST_ITEMS:
        return [
            _value(item, _key(etree.QName(item), extensions, item.prefix), extensions)
            for item in _children(element)
        ]
    text = (element.text or "").strip()
    if key in TEXT_MEMBERS:
        return {**_members(element, extensions), key: text}
    if len(element) or key in ATTRIBUTE_OBJECTS or (element.attrib and not text):
        return _members(element, extensions)
    return _scalar(key, text)


def _scalar(name: str, text: str) -> Any:
    """Text as JSON-LD has it: numbers and booleans where the binding says so."""
    if name in BOOLEANS:
        return text in ("true", "1")
    if name in NUMBERS:
        try:
            return int(text)
        except ValueError:
            return float(text)
    return text
