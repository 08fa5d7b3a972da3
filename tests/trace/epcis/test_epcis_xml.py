"""EPCIS XML (1.2 with the SBDH, 2.0 without) captured through the real app into the one
capture path, queried back as EPCIS 2.0 XML valid against the official query XSD, with CBV 2.0
event hashes checked by GS1's reference generator on the XML itself; hostile and XSD-invalid
XML refused with named rules and nothing stored."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from epcis_event_hash_generator import hash_generator
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from epcis_event_hash_generator.xml_to_py import event_list_from_epcis_document_str
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from medtrace.epcis.capture import check_fields, medtrace_events, read_document
from medtrace.epcis.document import query_document, recall_to_epcis, to_epcis
from medtrace.epcis.xml_binding import EPCIS_2_0, QUERY_2_0, safe_parser, schema
from medtrace.epcis.xml_capture import document_from_xml
from medtrace.epcis.xml_query import query_document_xml
from medtrace.errors import InvalidInput, MedtraceError
from medtrace.models import EventType, Role
from medtrace.protocol.identifiers import digital_link_path
from medtrace.schemas.capture import SignedEvent
from support.chain import EXPIRY, LOT, Chain, new_serial, new_sscc
from support.epcis import CONTEXT, job, unit_epc
from support.epcis import document as epcis_document
from support.epcis import event as epcis_event
from support.epcis import post as post_json
from support.iot import new_participant

#: GS1's generator reads its cached JSON-LD context through a deprecated importlib call.
pytestmark = pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning")
HERE = Path(__file__).parent / "xml"
SHIP = (HERE / "ship-1.2-sbdh.xml").read_text()
RECEIVE = (HERE / "receive-2.0.xml").read_text()
FORWARD = (HERE / "forward-2.0.xml").read_text()
DISPENSE = (HERE / "dispense-1.2.xml").read_text()
GTIN = "09521234000013"
HUB_GLN = "9525678000004"
MAKER_GLN = "9521234000006"
CSET_82 = "!\"%&'()*+,-./:;<=>?_09AZaz"


def fill(template: str, **values: str) -> bytes:
    """A fixture with its placeholders filled (serials escaped for XML text)."""
    escaped = {k: v.replace("&", "&amp;").replace("<", "&lt;") for k, v in values.items()}
    return string.Template(template).substitute(escaped).encode()


def ship_document(serials: tuple[str, str], sscc: str) -> bytes:
    return fill(
        SHIP, serial1=serials[0], serial2=serials[1], sscc=sscc, sscc_ref=sscc[0] + sscc[8:17],
        lot=LOT, expiry=EXPIRY.isoformat(),
    )  # fmt: skip


def receive_document(sscc: str, gln: str = HUB_GLN) -> bytes:
    return fill(RECEIVE, sscc=sscc, reader=f"https://id.gs1.org/414/{gln}")


def xml_hashes(body: bytes) -> list[str]:
    """GS1's reference CBV 2.0 hashes of an XML document's events (a query document's
    EventList is moved into an EPCISDocument: the generator reads capture documents)."""
    root = etree.fromstring(body, parser=safe_parser())
    if etree.QName(root).namespace == QUERY_2_0:
        events = root.find("EPCISBody/{*}QueryResults/resultsBody/EventList")
        root = etree.Element(etree.QName(EPCIS_2_0, "EPCISDocument"))
        etree.SubElement(root, "EPCISBody").append(events)
    text = etree.tostring(root, encoding="unicode")
    return list(hash_generator.epcis_hashes_from_events(event_list_from_epcis_document_str(text)))


def json_hashes(document: dict[str, Any]) -> list[str]:
    events = event_list_from_epcis_document_json(json.loads(json.dumps(document)))
    return list(hash_generator.epcis_hashes_from_events(events))


def document_events(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a document as capture reads them."""
    return read_document(document).events


def refusal(body: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        document_from_xml(body)
    return caught.value


# --- reading XML: no server ------------------------------------------------------------


def test_a_1_2_document_with_a_header_reads_as_the_json_ld_a_json_sender_posts() -> None:
    """1.2's extension wrappers are gone (ilmd, source and destination at the top), the SBDH
    is left out, and GS1's generator gives the XML and the JSON-LD the same hashes."""
    body = ship_document(("S/1<", "X%2"), new_sscc())
    document = document_from_xml(body)
    commission, pack, ship = document_events(document)
    assert commission["ilmd"] == {
        "cbvmda:lotNumber": LOT,
        "cbvmda:itemExpirationDate": EXPIRY.isoformat(),
    }
    assert commission["epcList"][0].endswith(".S/1<")
    assert pack["type"] == "AggregationEvent" and len(pack["childEPCs"]) == 2
    assert ship["destinationList"] == [
        {
            "type": "urn:epcglobal:cbv:sdt:owning_party",
            "destination": "urn:epc:id:sgln:9525678.00000.0",
        }
    ]
    assert "epcisHeader" not in document and "extension" not in json.dumps(document)
    assert [e["type"] for e in medtrace_events(ship)] == ["ship"]
    json_by_generator = json_hashes(
        {**document, "epcisBody": {"eventList": [pack, ship]}}  # no ilmd: see the report
    )
    assert xml_hashes(body)[1:] == json_by_generator


def test_a_2_0_document_without_a_header_reads_the_same_way() -> None:
    sscc = new_sscc()
    (receive,) = document_events(document_from_xml(receive_document(sscc)))
    assert receive["epcList"] == [f"https://id.gs1.org/00/{sscc}"]
    assert receive["bizStep"].endswith("BizStep-receiving") and receive["readPoint"]["id"].endswith(
        HUB_GLN
    )
    assert xml_hashes(receive_document(sscc)) == json_hashes(
        document_from_xml(receive_document(sscc))
    )


def test_extension_namespaces_that_share_a_prefix_keep_apart_in_the_json_ld() -> None:
    """XML lets each element bind a prefix to its own namespace; the JSON-LD document that
    capture keeps has one @context, so a second namespace under a prefix already taken, or
    under one the EPCIS context defines, gets the next free one (and the default namespace
    is ``ext``), and every member keeps its namespace."""
    body = receive_document(new_sscc()).replace(
        b"</ObjectEvent>",
        b'<a:x xmlns:a="urn:one:">1</a:x><a:y xmlns:a="urn:two:">2</a:y>'
        b'<a:z xmlns:a="urn:one:">3</a:z><w xmlns="urn:three:">4</w>'
        b'<cbv:v xmlns:cbv="urn:four:">5</cbv:v></ObjectEvent>',
    )
    document = document_from_xml(body)
    (received,) = document_events(document)
    assert {k: v for k, v in received.items() if ":" in k} == {
        "a:x": "1", "a2:y": "2", "a:z": "3", "ext:w": "4", "cbv2:v": "5",
    }  # fmt: skip
    assert document["@context"][1] == {
        "a": "urn:one:", "a2": "urn:two:", "ext": "urn:three:", "cbv2": "urn:four:",
    }  # fmt: skip
    check_fields(received, read_document(document).prefixes)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
  creationDate="2026-11-22T10:00:00Z"><EPCISBody><EventList><ObjectEvent>
  <eventTime>2026-11-22T10:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
  <epcList><epc>&lol9;</epc></epcList><action>OBSERVE</action>
</ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
  creationDate="2026-11-22T10:00:00Z"><EPCISBody>&x;</EPCISBody></epcis:EPCISDocument>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd"><d/>"""
LOOP = b'<!DOCTYPE a [<!ENTITY a "&b;"><!ENTITY b "&a;">]><a>&a;</a>'
DEEP = b"<a>" * 300 + b"</a>" * 300


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (BILLION_LAUGHS, "epcis.xml_limit"),
        (EXTERNAL_ENTITY, "epcis.xml_doctype"),
        (EXTERNAL_DTD, "epcis.xml_doctype"),
        (LOOP, "epcis.xml_limit"),
        (DEEP, "epcis.xml_limit"),
        (b"<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'>", "epcis.malformed"),
        (b"\xff\xfe<", "epcis.malformed"),
        (b"", "epcis.malformed"),
        (b"<EPCISDocument schemaVersion='2.0' creationDate='2026-11-22'/>", "epcis.malformed"),
        (
            b"<q:EPCISQueryDocument xmlns:q='urn:epcglobal:epcis-query:xsd:2'/>",
            "epcis.malformed",
        ),
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "entity-loop", "300-deep",
         "unclosed", "bytes", "empty", "no-namespace", "query-document"],
)  # fmt: skip
def test_hostile_or_broken_xml_is_refused_with_its_rule(body: bytes, rule: str) -> None:
    assert refusal(body).rule == rule


_ELEMENTS = re.compile(rb"<([A-Za-z:]+)>([^<]*)</\1>")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_text_in_any_element_is_read_or_refused_by_rule(data: st.DataObject) -> None:
    """Whatever text a sender puts in any leaf element of a valid 1.2 or 2.0 document (GS1's
    character set 82, XML's specials, any Unicode), reading and checking it end in a result or
    a named refusal, never another exception."""
    body = data.draw(st.sampled_from([ship_document(("A1", "A2"), "395212340000000014"),
                                      receive_document("395212340000000014")]))  # fmt: skip
    leaves = list(_ELEMENTS.finditer(body))
    leaf = leaves[data.draw(st.integers(0, len(leaves) - 1))]
    text = data.draw(st.text(st.sampled_from(CSET_82) | st.characters(), max_size=40))
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").encode("utf-8", "surrogatepass")
    mutated = body[: leaf.start(2)] + escaped + body[leaf.end(2) :]
    try:
        incoming = read_document(document_from_xml(mutated))
        for event in incoming.events:
            check_fields(event, incoming.prefixes)
            medtrace_events(event)
    except MedtraceError as exc:
        assert exc.rule.startswith(("epcis.", "gs1.", "capture.")), exc.rule


def test_a_bare_doctype_as_gs1s_own_examples_carry_is_accepted() -> None:
    body = receive_document(new_sscc()).replace(
        b"<epcis:EPCISDocument", b"<!DOCTYPE x>\n<epcis:EPCISDocument", 1
    )
    assert len(document_events(document_from_xml(body))) == 1


def test_an_xsd_violation_names_the_rule_the_line_and_the_element() -> None:
    body = receive_document(new_sscc()).replace(
        b"<action>OBSERVE</action>", b"<action>LOOK</action>"
    )
    error = refusal(body)
    assert error.rule == "epcis.xsd_invalid"
    line = 1 + body[: body.index(b"<action>")].count(b"\n")
    assert error.context["line"] == line
    assert error.context["element"].endswith("/ObjectEvent/action")
    assert "LOOK" in error.message and f"line {line}" in error.message


# --- writing XML: no server ------------------------------------------------------------


def recorded_events() -> list[dict[str, Any]]:
    """Each shape of event medtrace answers, as the JSON query writes it."""
    sscc, serial = new_sscc(), "S/1<&"
    at = "2026-11-22T10:00:00+08:00"
    signed = [
        SignedEvent(type=EventType.COMMISSION, gtin=GTIN, serial=serial, gln=MAKER_GLN,
                    event_time=at, lot=LOT, expiry=EXPIRY),
        SignedEvent(type=EventType.PACK, sscc=sscc, gln=MAKER_GLN, event_time=at,
                    children=[{"gtin": GTIN, "serial": serial}]),
        SignedEvent(type=EventType.SHIP, sscc=sscc, gln=MAKER_GLN, event_time=at,
                    destination_gln=HUB_GLN),
    ]  # fmt: skip
    events = [to_epcis(event, at) for event in signed]
    return [*events, recall_to_epcis(gtin=GTIN, lot=LOT, gln=MAKER_GLN, event_time=at)]


def test_the_xml_answer_is_valid_against_the_2_0_query_xsd_with_the_same_hashes() -> None:
    events = recorded_events()
    body = query_document_xml(query_document(events, created=dt.datetime.now(dt.UTC)))
    checker = schema(QUERY_2_0)
    assert checker.validate(etree.fromstring(body)), checker.error_log
    hashes = xml_hashes(body)
    # GS1's generator expands ``cbvmda:`` in XML but not in JSON-LD, so the commissioning
    # (which has an ILMD) is compared by the XML path alone, in the round-trip tests.
    assert hashes[1:] == json_hashes(query_as_capture(events))[1:]
    assert [e["eventID"] for e in events[1:]] == hashes[1:]


def query_as_capture(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON-LD capture document of these events, for the generator's JSON path."""
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "epcisBody": {"eventList": events},
    }  # fmt: skip


def test_xml_read_back_from_an_answer_is_the_json_answer() -> None:
    """Reading the XML answer gives back the events medtrace recorded, with their eventIDs
    (XML writes CBV terms as web URIs where the JSON answer has bare words)."""
    events = recorded_events()
    body = query_document_xml(query_document(events, created=dt.datetime.now(dt.UTC)))
    root = etree.fromstring(body)
    capture = etree.Element(etree.QName(EPCIS_2_0, "EPCISDocument"), schemaVersion="2.0",
                            creationDate="2026-11-22T10:00:00Z")  # fmt: skip
    etree.SubElement(capture, "EPCISBody").append(
        root.find("EPCISBody/{*}QueryResults/resultsBody/EventList")
    )
    read = document_events(document_from_xml(etree.tostring(capture)))
    assert [e["eventID"] for e in read] == [e["eventID"] for e in events]
    assert [medtrace_events(e) for e in read[:3]] == [medtrace_events(e) for e in events[:3]]
    assert read[3]["quantityList"] == events[3]["quantityList"]


# --- through the real app ----------------------------------------------------------------


def post_xml(
    chain: Chain, token: str, body: bytes, content_type: str = "application/xml"
) -> httpx.Response:
    return httpx.post(
        chain.server.url + "/epcis/capture",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        timeout=60,
    )


def query_xml(chain: Chain, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        chain.server.url + "/epcis/events",
        params=params,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/xml"},
        timeout=60,
    )


def test_1_2_and_2_0_xml_are_captured_and_answered_as_valid_2_0_xml_with_equal_hashes(
    chain: Chain,
) -> None:
    serials, sscc = (new_serial(), new_serial()), new_sscc()
    shipped, received = ship_document(serials, sscc), receive_document(sscc)
    sent = job(chain, chain.maker.token, post_xml(chain, chain.maker.token, shipped))
    assert (sent["success"], sent["errors"]) == (True, [])
    got = job(chain, chain.hub.token, post_xml(chain, chain.hub.token, received, "text/xml"))
    assert (got["success"], got["errors"]) == (True, [])

    units = "|".join(f"https://id.gs1.org/01/{GTIN}/21/{serial}" for serial in serials)
    answer = query_xml(
        chain,
        chain.hub.token,
        MATCH_anyEPC=f"urn:epc:id:sscc:9521234.{sscc[0]}{sscc[8:17]}|{units}",
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    checker = schema(QUERY_2_0)
    assert checker.validate(etree.fromstring(answer.content)), checker.error_log
    # every event, the two-EPC commissioning included (one event, as sent), comes back with
    # the hash of what was sent (GS1's generator on both XML documents)
    sent_hashes = xml_hashes(shipped) + xml_hashes(received)
    assert xml_hashes(answer.content) == sent_hashes
    json_answer = httpx.get(
        chain.server.url + "/epcis/events",
        params={"MATCH_anyEPC": f"https://id.gs1.org/00/{sscc}|{units}"},
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    ).json()
    json_events = json_answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    # sent without eventIDs, the events got urn:uuid ones, the same in both forms; GS1's
    # generator on the JSON-LD answer agrees but for the commissioning's ``cbvmda:`` ILMD,
    # which it expands in XML only
    event_ids = [e["eventID"] for e in json_events]
    assert event_ids == etree.fromstring(answer.content).xpath("//EventList/*/eventID/text()")
    assert all(event_id.startswith("urn:uuid:") for event_id in event_ids)
    assert json_hashes(query_as_capture(json_events))[1:] == sent_hashes[1:]

    one = httpx.get(
        chain.server.url + "/epcis/events/" + quote(event_ids[-1], safe=""),
        headers={"Authorization": f"Bearer {chain.hub.token}", "Accept": "application/xml"},
    )
    assert one.status_code == 200 and checker.validate(etree.fromstring(one.content))
    assert xml_hashes(one.content) == sent_hashes[-1:]


@pytest.mark.parametrize(
    ("accept", "xml"),
    [("application/xml", True), ("text/xml", True), ("", False), ("*/*", False),
     ("application/ld+json, application/xml;q=0.5", False),
     ("application/json;q=0.2, application/xml", True), ("application/xml;q=x", False)],
)  # fmt: skip
def test_the_answer_form_follows_accept(chain: Chain, accept: str, xml: bool) -> None:
    answer = httpx.get(
        chain.server.url + "/epcis/events",
        params={"perPage": "1"},
        headers={"Authorization": f"Bearer {chain.maker.token}", "Accept": accept},
    )
    assert answer.status_code == 200, answer.text
    kind = answer.headers["content-type"]
    assert kind.startswith("application/xml" if xml else "application/ld+json")


def test_bad_xml_through_the_app_is_refused_by_rule_and_nothing_is_stored(chain: Chain) -> None:
    before = chain.server.leaves()
    invalid = receive_document(new_sscc()).replace(b"<action>OBSERVE</action>", b"")
    for body, rule in ((BILLION_LAUGHS, "epcis.xml_limit"), (invalid, "epcis.xsd_invalid"),
                       (b"<not xml", "epcis.malformed")):  # fmt: skip
        answer = post_xml(chain, chain.hub.token, body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"]["rule"] == rule
    # the same errors as JSON, named by the same rules: a member that is neither EPCIS's nor
    # a declared extension (1.2's unqualified extension content: no namespace, so no prefix
    # in JSON-LD), and the distributor capturing at the manufacturer's GLN
    extra = ship_document((new_serial(), new_serial()), new_sscc()).replace(
        b"</ilmd>", b"</ilmd><extension><shelf>A4</shelf></extension>", 1
    )
    answer = post_xml(chain, chain.maker.token, extra)
    assert answer.status_code == 422 and answer.json()["detail"]["rule"] == "epcis.unknown_field"
    assert answer.json()["detail"]["fields"] == ["shelf"]
    foreign = job(
        chain,
        chain.hub.token,
        post_xml(chain, chain.hub.token, receive_document(new_sscc(), MAKER_GLN)),
    )
    assert foreign["success"] is False
    assert foreign["errors"][0]["rule"] == "custody.wrong_location"
    assert chain.server.leaves() == before


def test_a_dscsa_shaped_flow_in_xml_each_partner_with_its_own_token(chain: Chain) -> None:
    """Manufacturer (1.2 with SBDH: commission, pack, ship) → distributor, whose warehouse a
    3PL runs (2.0: the 3PL receives under the distributor's capture grant; the distributor
    ships on) → pharmacy (2.0: receive; 1.2: unpack, dispense): the pack is dispensed and
    genuine, and the XML answer about it carries the hashes of what each partner sent."""
    serials, sscc = (new_serial(), new_serial()), new_sscc()
    pharmacy_gln = chain.pharmacy.gln
    forward = fill(FORWARD, sscc=sscc, sender=HUB_GLN, receiver=pharmacy_gln)
    dispense = fill(DISPENSE, serial=serials[0], sscc_ref=sscc[0] + sscc[8:17])
    third_party_gln, third_party = new_participant(chain.server, Role.DISTRIBUTOR)
    shipped = ship_document(serials, sscc)
    assert job(chain, chain.maker.token, post_xml(chain, chain.maker.token, shipped))["success"]
    ungranted = job(chain, third_party, post_xml(chain, third_party, receive_document(sscc)))
    assert ungranted["success"] is False
    assert ungranted["errors"][0]["rule"] == "custody.wrong_location"
    granted = httpx.post(
        chain.server.url + "/api/v1/capture-grants",
        json={
            "grantee": third_party_gln,
            "gln": HUB_GLN,
            "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
        },
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert granted.status_code == 201, granted.text
    steps = [
        (third_party, receive_document(sscc)),
        (chain.hub.token, forward),
        (chain.pharmacy.token, receive_document(sscc, pharmacy_gln).replace(b"11-23", b"11-25")),
        (chain.pharmacy.token, dispense),
    ]
    for token, body in steps:
        result = job(chain, token, post_xml(chain, token, body))
        assert (result["success"], result["errors"]) == (True, [])

    url = chain.server.url + digital_link_path(GTIN, serials[0], lot=LOT)
    verified = httpx.get(url, headers={"Accept": "application/json"}).json()
    assert (verified["unit"]["state"], verified["verdict"]) == ("dispensed", "genuine")
    assert [e["type"] for e in verified["events"]] == [
        "commission", "pack", "ship", "receive", "ship", "receive", "unpack", "dispense",
    ]  # fmt: skip
    answer = query_xml(
        chain, chain.pharmacy.token, MATCH_anyEPC=f"https://id.gs1.org/01/{GTIN}/21/{serials[0]}"
    )
    assert schema(QUERY_2_0).validate(etree.fromstring(answer.content))
    commission_hash, pack_hash, _ = xml_hashes(shipped)
    assert xml_hashes(answer.content) == [commission_hash, pack_hash, *xml_hashes(dispense)]


def test_captured_extensions_are_answered_in_xml_in_their_namespaces_or_refused_by_rule(
    chain: Chain,
) -> None:
    """Events are answered as captured, so the XML answer carries the JSON-LD sender's
    extension members (top level, nested, in the ILMD) in the namespaces its ``@context``
    declared, and is still valid against the query XSD; a member with no XML form (its name
    is no XML name) is refused with ``406 epcis.no_xml_form``, never a 500, and JSON-LD
    still answers it."""
    extension = {"example": "http://ns.example.com/epcis/"}
    moment = "2026-03-0{}T10:00:00.{:03d}Z"
    at = [moment.format(day, secrets.randbelow(1000)) for day in (3, 4)]
    serials = [new_serial(), new_serial()]
    sent = epcis_document(
        epcis_event(
            "ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
            eventTime=at[0], epcList=[unit_epc(s) for s in serials[:1]],
            ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat(),
                  "example:line": "L7"},
            persistentDisposition={"set": ["completeness_verified"]},
            **{"example:seal": "S-19", "example:box": {"note": "kept", "example:n": 2}},
        ),
        epcis_event(
            "ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
            eventTime=at[1], epcList=[unit_epc(s) for s in serials[1:]],
            ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()},
            **{"example:no xml name": "x"},
        ),
    )  # fmt: skip
    sent["@context"] = [CONTEXT, extension]
    result = job(chain, chain.maker.token, post_json(chain, chain.maker.token, sent))
    assert result["success"], result["errors"]

    def window(moment: str) -> dict[str, str]:
        start = dt.datetime.fromisoformat(moment)
        end = start + dt.timedelta(milliseconds=1)
        return {"GE_eventTime": start.isoformat(), "LT_eventTime": end.isoformat()}

    answer = query_xml(chain, chain.maker.token, **window(at[0]))
    assert answer.status_code == 200, answer.text
    root = etree.fromstring(answer.content)
    assert schema(QUERY_2_0).validate(root), schema(QUERY_2_0).error_log
    space = extension["example"]
    (event,) = root.findall("EPCISBody/{*}QueryResults/resultsBody/EventList/ObjectEvent")
    assert event.findtext(f"{{{space}}}seal") == "S-19"
    assert event.findtext(f"{{{space}}}box/note") == "kept"
    assert event.findtext(f"{{{space}}}box/{{{space}}}n") == "2"
    assert event.findtext(f"ilmd/{{{space}}}line") == "L7"

    refused = query_xml(chain, chain.maker.token, **window(at[1]))
    assert refused.status_code == 406, refused.text
    assert refused.json()["detail"]["rule"] == "epcis.no_xml_form"
    as_json = httpx.get(
        chain.server.url + "/epcis/events",
        params=window(at[1]),
        headers={"Authorization": f"Bearer {chain.maker.token}"},
    )
    assert as_json.status_code == 200
    (back,) = as_json.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert back["example:no xml name"] == "x"
    one = httpx.get(
        chain.server.url + "/epcis/events/" + quote(back["eventID"], safe=""),
        headers={"Authorization": f"Bearer {chain.maker.token}", "Accept": "application/xml"},
    )
    assert one.status_code == 406 and one.json()["detail"]["rule"] == "epcis.no_xml_form"


def test_the_xml_writer_declares_the_answers_context_prefixes_and_refuses_the_rest() -> None:
    """Without the sender's context entry a prefix has no namespace: ``ValueError`` (the
    route's 406), as for a prefix declared as no XML prefix or no namespace URI."""
    (commission, *_) = recorded_events()
    created = dt.datetime.now(dt.UTC)
    extended = {**commission, "ex:seal": "S-19"}
    good = [{"ex": "urn:example:ext:"}]
    body = query_document_xml(query_document([extended], created=created, contexts=good))
    assert etree.fromstring(body).find(".//{urn:example:ext:}seal").text == "S-19"
    for contexts in ([], [{"ex": "not a uri"}], [{"e x": "urn:x:"}], ["https://x.org/c.jsonld"]):
        with pytest.raises(ValueError, match="ex:seal"):
            query_document_xml(query_document([extended], created=created, contexts=contexts))
