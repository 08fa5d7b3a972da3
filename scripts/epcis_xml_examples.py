"""Development check: GS1's own EPCIS XML examples through medtrace's XML binding.

Not part of the test suite (it reads GS1's examples from a reference folder a user's clone
does not have). For each example, 1.2 and 2.0:

1. read it as medtrace's capture does (``xml_capture.document_from_xml``): refused with a
   rule, or the JSON-LD document;
2. GS1's event hash generator on the XML and on that JSON-LD: equal hashes mean the reading
   kept every hashed field;
3. the JSON-LD written back as an EPCIS 2.0 XML query document (``xml_query``), valid against
   the 2.0 query XSD, with the hashes of the original.

Run: .venv/bin/python scripts/epcis_xml_examples.py [--reference ../shared/reference/epcis/xml]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from epcis_event_hash_generator import hash_generator
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from epcis_event_hash_generator.xml_to_py import event_list_from_epcis_document_str
from lxml import etree

from medtrace.epcis.document import query_document
from medtrace.epcis.xml_binding import EPCIS_2_0, QUERY_2_0, schema
from medtrace.epcis.xml_capture import document_from_xml
from medtrace.epcis.xml_query import query_document_xml
from medtrace.errors import InvalidInput


def _xml_hashes(text: str) -> list[str]:
    return list(hash_generator.epcis_hashes_from_events(event_list_from_epcis_document_str(text)))


def _json_hashes(document: dict[str, Any]) -> list[str]:
    events = event_list_from_epcis_document_json(json.loads(json.dumps(document)))
    return list(hash_generator.epcis_hashes_from_events(events))


def _answer_hashes(body: bytes) -> list[str]:
    root = etree.fromstring(body)
    capture = etree.Element(etree.QName(EPCIS_2_0, "EPCISDocument"))
    body_element = etree.SubElement(capture, "EPCISBody")
    body_element.append(root.find("EPCISBody/{*}QueryResults/resultsBody/EventList"))
    return _xml_hashes(etree.tostring(capture, encoding="unicode"))


def check(path: Path) -> str:
    """One line of verdicts for one example."""
    text = path.read_text()
    try:
        document = document_from_xml(path.read_bytes())
    except InvalidInput as exc:
        return f"refused {exc.rule}: {exc.message[:90]}"
    try:
        sent = _xml_hashes(text)
    except IndexError:
        return "read; GS1's generator cannot hash the original"
    read = "read: same hashes" if _json_hashes(document) == sent else "read: HASHES DIFFER"
    events = document["epcisBody"]["eventList"]
    try:
        answered = query_document(events, created=dt.datetime.now(dt.UTC))
        answer = query_document_xml({**answered, "@context": document["@context"]})
    except ValueError as exc:
        return f"{read}; written: no 2.0 XML form ({exc})"
    checker = schema(QUERY_2_0)
    valid = "valid" if checker.validate(etree.fromstring(answer)) else "XSD-INVALID"
    same = "same hashes" if _answer_hashes(answer) == sent else "HASHES DIFFER"
    return f"{read}; written: {valid}, {same}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=Path("../shared/reference/epcis/xml"))
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the generator logs every event it cannot hash
    warnings.simplefilter("ignore", DeprecationWarning)
    for path in sorted(args.reference.glob("examples-*/*.xml")):
        print(f"{path.parent.name}/{path.name}: {check(path)}")


if __name__ == "__main__":
    main()
