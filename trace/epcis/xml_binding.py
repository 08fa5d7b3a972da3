"""What the EPCIS XML binding (1.2 and 2.0) and the JSON-LD binding (2.0) share, in one place.

Both directions of medtrace's XML support read these tables: ``xml_capture`` turns an XML
document into the JSON-LD document the JSON capture path takes, ``xml_query`` turns JSON-LD
events into an EPCIS 2.0 XML query document. Keeping the name mappings here means a member
written out is read back under the same name.

The official GS1 XSDs are vendored in ``xsd/1.2`` and ``xsd/2.0`` (source and licence in
``xsd/README.md``) so that validation needs neither the network nor a copy of the standard.
"""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

EPCIS_1_2 = "urn:epcglobal:epcis:xsd:1"
EPCIS_2_0 = "urn:epcglobal:epcis:xsd:2"
QUERY_2_0 = "urn:epcglobal:epcis-query:xsd:2"
_XSD = Path(__file__).parent / "xsd"
_SCHEMA_FILES = {
    EPCIS_1_2: _XSD / "1.2" / "EPCglobal-epcis-1_2.xsd",
    EPCIS_2_0: _XSD / "2.0" / "EPCglobal-epcis-2_0.xsd",
    QUERY_2_0: _XSD / "2.0" / "EPCglobal-epcis-query-2_0.xsd",
}

#: JSON-LD prefixes of the EPCIS 2.0 context whose XML namespace differs from the prefix's
#: expansion only by the final separator (XML ``urn:epcglobal:cbv:mda``, JSON-LD
#: ``urn:epcglobal:cbv:mda:``): an XML element in one of these namespaces takes this prefix
#: in JSON-LD whatever prefix the sender declared, and the XML answer declares it again.
KNOWN_NAMESPACES = {
    "cbvmda": "urn:epcglobal:cbv:mda",
    "gs1": "https://gs1.org/voc/",
}
#: XML wrapper elements whose JSON-LD form is a plain array, and the element of each item.
LIST_ITEMS = {
    "epcList": "epc",
    "childEPCs": "epc",
    "inputEPCList": "epc",
    "outputEPCList": "epc",
    "quantityList": "quantityElement",
    "childQuantityList": "quantityElement",
    "inputQuantityList": "quantityElement",
    "outputQuantityList": "quantityElement",
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
    "sensorElementList": "sensorElement",
    "correctiveEventIDs": "correctiveEventID",
}
#: Elements that may repeat without a wrapper: always an array in JSON-LD.
REPEATED = frozenset({"sensorReport", "set", "unset"})
#: Elements whose text is a member of their JSON-LD object, beside their ``type`` attribute
#: (``<source type="…">urn:…</source>`` is ``{"type": "…", "source": "urn:…"}``).
TEXT_MEMBERS = frozenset({"bizTransaction", "source", "destination"})
#: Elements whose data are all attributes (EPCIS 2.0 sensor data).
ATTRIBUTE_OBJECTS = frozenset({"sensorMetadata", "sensorReport"})
#: Members that are numbers in JSON-LD (XSD decimal or double).
NUMBERS = frozenset(
    {"quantity", "value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)
#: The one boolean member (an attribute of sensorReport).
BOOLEANS = frozenset({"booleanValue"})


def safe_parser() -> etree.XMLParser:
    """An lxml parser that is safe on hostile input: no DTD loaded, no entity expanded (a
    billion-laughs document stays small, an external entity reads no file), no network, and
    libxml2's default limits on depth and text size (``huge_tree`` off)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


_per_thread = threading.local()


def schema(namespace: str) -> etree.XMLSchema:
    """The official XSD for documents whose root is in ``namespace`` (``EPCIS_1_2``,
    ``EPCIS_2_0`` or ``QUERY_2_0``), compiled from the vendored files once per thread: an
    ``XMLSchema`` keeps the errors of its last validation on itself, so captures running in
    parallel threads must not share one.

    Raises ``KeyError`` for another namespace (a caller's bug: check it first)."""
    compiled: dict[str, etree.XMLSchema] = _per_thread.__dict__.setdefault("schemas", {})
    if namespace not in compiled:
        document = etree.parse(str(_SCHEMA_FILES[namespace]), parser=safe_parser())
        compiled[namespace] = etree.XMLSchema(document)
    return compiled[namespace]
