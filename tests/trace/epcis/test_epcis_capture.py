"""EPCIS 2.0 capture on a live server (SQLite and PostgreSQL): documents in, capture jobs,
token-authenticated leaves that verify pages and the independent checker tell apart, and
bad documents refused with a precise rule and nothing written."""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlmodel import Session

from independent_checker import check_url
from medtrace.demo import GTIN
from medtrace.epcis.capture import medtrace_events, read_document
from medtrace.errors import InvalidInput
from medtrace.models import Role
from medtrace.protocol.identifiers import digital_link_path
from medtrace.services.registry import create_participant
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.epcis import document, event, job, new_sscc, post, unit_epc

HERE = Path(__file__).parent
AGGREGATION_EXAMPLE = json.loads((HERE / "example-9.6.3-aggregation-event.jsonld").read_text())
OBJECT_EXAMPLE = json.loads((HERE / "example-9.6.1-object-event-digital-link.jsonld").read_text())


def ship_a_case_by_epcis(chain: Chain) -> tuple[list[str], str]:
    """The manufacturer commissions two units, packs them and ships the case, all by EPCIS."""
    serials, case = [new_serial(), new_serial()], new_sscc()
    maker = chain.maker.gln
    commission = event(
        "ObjectEvent", "commissioning", "active", maker, action="ADD",
        epcList=[unit_epc(s) for s in serials],
        ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()},
    )  # fmt: skip
    pack = event(
        "AggregationEvent", "packing", "in_progress", maker, action="ADD",
        parentID=f"https://id.gs1.org/00/{case}",
        childEPCs=[f"https://id.gs1.org/01/{GTIN}/21/{s}" for s in serials],
    )  # fmt: skip
    ship = event(
        "ObjectEvent", "shipping", "in_transit", maker,
        epcList=[f"urn:epc:id:sscc:9521234.{case[0]}{case[8:17]}"],
        destinationList=[{"type": "owning_party",
                          "destination": f"https://id.gs1.org/414/{chain.hub.gln}"}],
    )  # fmt: skip
    result = job(
        chain, chain.maker.token, post(chain, chain.maker.token, document(commission, pack, ship))
    )
    assert (result["success"], result["errors"]) == (True, [])
    return serials, case


def test_a_document_is_captured_as_a_job_and_its_events_are_marked_token_captured(
    chain: Chain,
) -> None:
    serials, case = ship_a_case_by_epcis(chain)
    receive = event("ObjectEvent", "receiving", "in_progress", chain.hub.gln,
                    epcList=[f"https://id.gs1.org/00/{case}"])  # fmt: skip
    assert job(chain, chain.hub.token, post(chain, chain.hub.token, document(receive)))["success"]

    url = chain.server.url + digital_link_path(GTIN, serials[0], lot=LOT)
    answer = httpx.get(url, headers={"Accept": "application/json"}).json()
    assert answer["unit"]["state"] == "received"
    assert [e["type"] for e in answer["events"]] == ["commission", "pack", "ship", "receive"]
    assert {e["authenticated_by"] for e in answer["events"]} == {"participant_token"}
    assert {e["station_id"] for e in answer["events"]} == {None}
    assert answer["verdict"] == "genuine"
    assert any("API token" in reason for reason in answer["reasons"])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    assert [c.status for c in check_url(url)] == ["unsigned"] * 4


def test_gs1s_aggregation_example_captures_without_what_medtrace_does_not_record(
    chain: Chain,
) -> None:
    """GS1's example 9.6.3 (a case received with its children scanned), posted by a receiver
    at its readPoint, after the sender shipped that case there: as is, it is refused naming
    the quantity list medtrace does not record (custody is per instance); without it, it is
    captured, its extension member kept and answered back to its sender."""
    receiver_gln, sender_gln = "0614141007776", "0614141000012"
    tokens = {}
    for gln, role, prefix in ((receiver_gln, Role.DISTRIBUTOR, None),
                              (sender_gln, Role.MANUFACTURER, "0614141")):  # fmt: skip
        with Session(chain.server.engine) as session:
            created = create_participant(
                session=session, gln=gln, name=f"GS1 example {gln}", role=role,
                company_prefix=prefix,
            )  # fmt: skip
        tokens[gln] = created.token
    units = ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"]
    to_receiver = {"type": "owning_party", "destination": f"https://id.gs1.org/414/{receiver_gln}"}
    sender = [
        event("ObjectEvent", "commissioning", "active", sender_gln, action="ADD",
              epcList=units,
              ilmd={"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2030-01-31"}),
        event("AggregationEvent", "packing", "in_progress", sender_gln, action="ADD",
              parentID="urn:epc:id:sscc:0614141.1234567890",
              childEPCs=units),
        event("ObjectEvent", "shipping", "in_transit", sender_gln,
              epcList=["urn:epc:id:sscc:0614141.1234567890"],
              destinationList=[to_receiver]),
    ]  # fmt: skip
    assert job(chain, tokens[sender_gln], post(chain, tokens[sender_gln], document(*sender)))[
        "success"
    ]

    before = chain.server.snapshot()
    as_is = post(chain, tokens[receiver_gln], AGGREGATION_EXAMPLE)
    assert as_is.status_code == 422, as_is.text
    assert as_is.json()["detail"]["rule"] == "epcis.quantity_list"
    assert as_is.json()["detail"]["fields"] == ["childQuantityList"]
    assert chain.server.snapshot() == before
    recorded = copy.deepcopy(AGGREGATION_EXAMPLE)
    del recorded["epcisBody"]["eventList"][0]["childQuantityList"]

    result = job(chain, tokens[receiver_gln], post(chain, tokens[receiver_gln], recorded))

    assert (result["success"], result["errors"]) == (True, [])
    answer = httpx.get(
        chain.server.url + "/01/10614141073464/21/2017", headers={"Accept": "application/json"}
    ).json()
    assert (answer["unit"]["state"], answer["unit"]["holder"]["gln"]) == ("received", receiver_gln)
    sent = recorded["epcisBody"]["eventList"][0]
    back = httpx.get(
        chain.server.url + "/epcis/events/" + quote(sent["eventID"], safe=""),
        headers={"Authorization": f"Bearer {tokens[receiver_gln]}"},
    ).json()
    assert back == {"@context": recorded["@context"], **sent}


def test_a_custody_refusal_fails_the_job_and_writes_nothing(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    to_pharmacy = {"type": "owning_party",
                   "destination": f"https://id.gs1.org/414/{chain.pharmacy.gln}"}  # fmt: skip
    steal = event("ObjectEvent", "shipping", "in_transit", chain.hub.gln,
                  epcList=[unit_epc(serial)], destinationList=[to_pharmacy])  # fmt: skip
    fine = event("ObjectEvent", "storing", "sellable_accessible", chain.hub.gln,
                 epcList=[unit_epc(new_serial())])  # fmt: skip
    before = chain.server.snapshot()
    result = job(chain, chain.hub.token, post(chain, chain.hub.token, document(fine, steal)))
    assert chain.server.snapshot() == before
    assert result["success"] is False
    assert [(e["rule"], e["index"]) for e in result["errors"]] == [("custody.unknown_unit", 0)]


def _example_without_destination() -> bytes:
    """GS1's example 9.6.1 without the members medtrace does not record: its shipping names
    no destination."""
    example = copy.deepcopy(OBJECT_EXAMPLE)
    for recorded in example["epcisBody"]["eventList"]:
        recorded.pop("bizTransactionList")
        recorded.pop("example:myField", None)
    return json.dumps(example).encode()


def _with(field: str, value: Any) -> bytes:
    doc = document(event("ObjectEvent", "receiving", "in_progress", "9525678000004",
                         epcList=[unit_epc("S1")]))  # fmt: skip
    doc["epcisBody"]["eventList"][0][field] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("body", "status", "rule"),
    [
        (b"{not json", 422, "epcis.malformed"),
        (json.dumps({**document(), "@context": "https://example.com/ctx"}).encode(), 422,
         "epcis.bad_context"),
        (json.dumps(document()).encode(), 422, "epcis.malformed"),
        (_with("bizStep", "teleporting"), 422, "epcis.unknown_biz_step"),
        (_with("type", "TransformationEvent"), 422, "epcis.unsupported_event_type"),
        (_with("epcList", ["urn:epc:id:grai:9521234.00001.1"]), 422, "epcis.bad_epc"),
        (_with("epcList", ["https://id.gs1.org/01/09521234000113/21/X"]), 422,
         "gs1.bad_check_digit"),
        (_with("eventTime", "2999-01-01T00:00:00Z"), 422, "capture.future_event"),
        (_with("action", "ADD"), 422, "epcis.action"),
        (_example_without_destination(), 422, "epcis.missing_destination"),
        (b"[" * 100_000 + b"]" * 100_000, 422, "epcis.malformed"),
        (_with("example:myField", "a user extension"), 422, "epcis.unknown_field"),
        (_with("bizTransactionList", [{"type": "po", "note": "urn:x:po:1"}]), 422,
         "epcis.unknown_field"),
        (_with("bizTransactionList", [{"type": "po"}]), 422, "epcis.malformed"),
        (_with("sensorElementList", {"sensorReport": [{"stringValue": "x"}]}), 422,
         "epcis.malformed"),
        (_with("certificationInfo", [7]), 422, "epcis.malformed"),
        (_with("quantityList", [{"epcClass": "urn:epc:class:lgtin:9521234.012345.L1"}]), 422,
         "epcis.quantity_list"),
        (_with("epcList", [unit_epc("S1"), f"https://id.gs1.org/01/{GTIN}/21/S1"]), 422,
         "epcis.malformed"),
        (_with("readPoint", {"id": "https://id.gs1.org/414/9525678000004", "name": "x"}), 422,
         "epcis.unknown_field"),
        (_with("ilmd", {"cbvmda:lotNumber": "L1"}), 422, "epcis.unknown_field"),
        (_with("destinationList", [{"type": "owning_party", "note": "x",
                                    "destination": "https://id.gs1.org/414/9525678000004"}]),
         422, "epcis.unknown_field"),
        (_with("disposition", "kept for patient Jane Doe"), 422, "epcis.unknown_disposition"),
        (_with("eventID", "a note for the public"), 422, "epcis.malformed"),
        (_with("eventTimeZoneOffset", "+02:00 Jane Doe"), 422, "epcis.malformed"),
        (b" " * (32 * 1024 * 1024 + 1), 413, "capture.too_large"),
    ],
)  # fmt: skip
def test_bad_documents_are_refused_with_their_rule_and_write_nothing(
    chain: Chain, body: bytes, status: int, rule: str
) -> None:
    before = chain.server.snapshot()
    response = post(chain, chain.hub.token, body)
    assert (response.status_code, response.json()["detail"]["rule"]) == (status, rule), (
        response.text
    )
    assert response.json()["detail"]["message"]
    assert chain.server.snapshot() == before


def test_an_unknown_member_never_reaches_the_public_ledger(chain: Chain) -> None:
    """Issue 18 item 5: a commissioning with 200 000 bytes of anything in an extra member was
    accepted and published forever; now it is refused naming the member, nothing written."""
    commission = event(
        "ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
        epcList=[unit_epc(new_serial())], junk="A" * 200_000,
        ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat(),
              "patient": "Jane Doe"},
    )  # fmt: skip
    before = chain.server.snapshot()

    response = post(chain, chain.maker.token, document(commission))

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert (detail["rule"], detail["fields"], detail["index"]) == (
        "epcis.unknown_field",
        ["ilmd.patient", "junk"],
        0,
    )
    assert "junk" in detail["message"] and "ilmd.patient" in detail["message"]
    assert chain.server.snapshot() == before


def test_a_job_is_visible_only_to_its_participant(chain: Chain) -> None:
    response = post(chain, chain.maker.token, document(
        event("ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
              epcList=[unit_epc(new_serial())],
              ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()})
    ))  # fmt: skip
    assert response.status_code == 202
    other = httpx.get(
        chain.server.url + response.headers["location"],
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert (other.status_code, other.json()["detail"]["rule"]) == (404, "epcis.unknown_capture")


def test_gs1s_object_example_maps_event_by_event() -> None:
    events = read_document(OBJECT_EXAMPLE).events
    with pytest.raises(InvalidInput) as refused:
        medtrace_events(events[0])
    assert refused.value.rule == "epcis.missing_destination"
    assert medtrace_events(events[1]) == [
        {"type": "receive", "gln": "0012345111112", "event_time": "2005-04-04T20:33:31.116-06:00",
         "gtin": "70614141123451", "serial": "2018"}
    ]  # fmt: skip
    shipped = copy.deepcopy(events[0])
    shipped["destinationList"] = [
        {"type": "owning_party", "destination": "urn:epc:id:sgln:0012345.11111.0"}
    ]
    assert [e["serial"] for e in medtrace_events(shipped)] == ["2017", "2018"]


@pytest.mark.slow
def test_a_document_of_the_maximum_size_is_captured(chain: Chain) -> None:
    """10 000 events in one document: the store reads them in slices (PostgreSQL refuses a
    10 000-row ``IN`` list) and captures them all in one job."""
    events = [
        event("ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
              epcList=[unit_epc(f"M{n:07d}{secrets.token_hex(2)}")],
              ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()})
        for n in range(10_000)
    ]  # fmt: skip
    leaves = chain.server.snapshot()[0]
    result = job(chain, chain.maker.token, post(chain, chain.maker.token, document(*events)))
    assert (result["success"], result["errors"]) == (True, [])
    assert chain.server.snapshot()[0] == leaves + 10_000
