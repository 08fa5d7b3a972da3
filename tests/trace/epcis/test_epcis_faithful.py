"""EPCIS answers what was sent (issue 19 §3), on a live server on each backend: a captured
event comes back once, with its eventID, all its EPCs and every member it carried, and the
same CBV 2.0 hash (GS1's reference implementation is the judge); the leaves hold its digest,
not its content; other participants read only its custody record; pages count events; the
single-event capture answers 201 or 409; real senders' variants are read."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import rfc8785
from epcis_event_hash_generator import hash_generator
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from sqlmodel import Session

from medtrace import ledger
from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Role
from medtrace.services.registry import create_participant
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.epcis import CONTEXT, document, event, job, post, unit_epc

REFERENCE_WARNING = "ignore::DeprecationWarning"
EXTENSION = {"example": "http://ns.example.com/epcis/"}
SENSORS = [
    {
        "sensorMetadata": {
            "time": "2026-11-20T09:55:00.000Z", "deviceID": "urn:epc:id:giai:4000001.111"
        },
        "sensorReport": [{"type": "Temperature", "value": 5.5, "uom": "CEL"}],
    }
]  # fmt: skip


def _time() -> str:
    """A past eventTime of its own (milliseconds), so a query can single out a test's events."""
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        milliseconds=secrets.randbelow(300 * 86_400_000)
    )
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _window(moment: str) -> dict[str, str]:
    start = dt.datetime.fromisoformat(moment)
    return {
        "GE_eventTime": start.isoformat(),
        "LT_eventTime": (start + dt.timedelta(milliseconds=1)).isoformat(),
    }


def _get(chain: Chain, token: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        chain.server.url + path, params=params, headers={"Authorization": f"Bearer {token}"}
    )


def _answer(chain: Chain, token: str, **params: str) -> dict[str, Any]:
    response = _get(chain, token, "/epcis/events", perPage="1000", **params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _events(answer: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = answer["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def _hashes(doc: dict[str, Any]) -> list[str]:
    """GS1's reference CBV 2.0 hashes of a document's events (an outside oracle)."""
    if doc["type"] == "EPCISQueryDocument":
        doc = {**doc, "type": "EPCISDocument", "epcisBody": {"eventList": _events(doc)}}
    hashes: list[str] = hash_generator.epcis_hashes_from_events(
        event_list_from_epcis_document_json(json.loads(json.dumps(doc)))
    )
    return hashes


def _post_event(chain: Chain, token: str, sent: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        chain.server.url + "/epcis/events",
        json=sent,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"},
    )


def _regulator(chain: Chain) -> str:
    gln = with_check_digit(f"95299{secrets.randbelow(10**7):07d}")
    with Session(chain.server.engine) as session:
        return create_participant(
            session=session, gln=gln, name="Regulator", role=Role.REGULATOR
        ).token


def _commissioning(chain: Chain, serials: list[str], moment: str) -> dict[str, Any]:
    return event(
        "ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
        eventTime=moment, epcList=[unit_epc(s) for s in serials],
        ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat(),
              "example:line": "L7"},
        certificationInfo="https://cert.example.org/gmp/42",
        persistentDisposition={"set": ["completeness_verified"]},
        **{"example:myField": {"note": "kept as sent"}},
    )  # fmt: skip


def _shipping(chain: Chain, serials: list[str], moment: str) -> dict[str, Any]:
    return {
        "@context": [CONTEXT, EXTENSION],
        **event(
            "ObjectEvent", "shipping", "in_transit", chain.maker.gln, eventTime=moment,
            epcList=[unit_epc(s) for s in serials],
            bizTransactionList=[{"type": "po",
                                 "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:PO-1"}],
            sourceList=[{"type": "owning_party",
                         "source": f"https://id.gs1.org/414/{chain.maker.gln}"}],
            destinationList=[{"type": "owning_party",
                              "destination": f"https://id.gs1.org/414/{chain.hub.gln}"}],
            sensorElementList=SENSORS,
            **{"example:seal": "S-19"},
        ),
    }  # fmt: skip


@pytest.mark.filterwarnings(REFERENCE_WARNING)
def test_a_multi_epc_event_comes_back_once_as_sent_with_the_same_hash(chain: Chain) -> None:
    serials, moments = [new_serial() for _ in range(3)], [_time(), _time()]
    sent_doc = document(_commissioning(chain, serials, moments[0]))
    sent_doc["@context"] = [CONTEXT, EXTENSION]
    assert job(chain, chain.maker.token, post(chain, chain.maker.token, sent_doc))["success"]
    shipping = _shipping(chain, serials, moments[1])
    assert _post_event(chain, chain.maker.token, shipping).status_code == 201

    for moment, sent in zip(
        moments, (sent_doc["epcisBody"]["eventList"][0], shipping), strict=True
    ):
        answer = _answer(chain, chain.maker.token, **_window(moment))
        (back,) = _events(answer)
        expected = {k: v for k, v in sent.items() if k != "@context"}
        assert back == {"eventID": back["eventID"], **expected}
        assert back["eventID"].startswith("urn:uuid:")
        assert answer["@context"] == [CONTEXT, EXTENSION]
        single = document(expected)
        single["@context"] = [CONTEXT, EXTENSION]
        assert _hashes(answer) == _hashes(single)
    by_unit = _answer(chain, chain.maker.token, MATCH_epc=unit_epc(serials[1]))
    assert [e["bizStep"] for e in _events(by_unit)] == ["commissioning", "shipping"]
    assert [len(e["epcList"]) for e in _events(by_unit)] == [3, 3]


@pytest.mark.filterwarnings(REFERENCE_WARNING)
def test_the_leaves_hold_the_digest_and_others_read_only_the_custody_record(
    chain: Chain,
) -> None:
    serials, moments = [new_serial(), new_serial()], [_time(), _time()]
    commission = _commissioning(chain, serials, moments[0])
    commission["eventID"] = f"urn:uuid:{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}"
    sent_doc = document(commission)
    sent_doc["@context"] = [CONTEXT, EXTENSION]
    leaves = chain.server.leaves()
    assert job(chain, chain.maker.token, post(chain, chain.maker.token, sent_doc))["success"]
    assert (
        _post_event(chain, chain.maker.token, _shipping(chain, serials, moments[1])).status_code
        == 201
    )

    stored = _get(
        chain, chain.maker.token, "/epcis/events/" + quote(commission["eventID"], safe="")
    )
    assert stored.json() == {"@context": [CONTEXT, EXTENSION], **commission}
    with chain.server.engine.connect() as conn:
        written = ledger.leaves_at(conn, list(range(leaves, leaves + 4)))
    digest = hashlib.sha256(rfc8785.dumps(stored.json())).hexdigest()
    assert [json.loads(leaf)["epcis"]["sha256"] for leaf in written.values()][:2] == [digest] * 2
    for leaf in written.values():
        assert b"sensorElementList" not in leaf and b"example:" not in leaf and b"PO-1" not in leaf

    # Which events a participant reads at all is ``viewer_of``'s: the pharmacy, party to
    # nothing yet, reads none of them. Once the hub ships the units on to it, it reads their
    # history (the units were at its GLN), but only the custody record of each event it is
    # not named in.
    assert _events(_answer(chain, chain.pharmacy.token, **_window(moments[0]))) == []
    units = [unit_epc(s) for s in serials]
    later = [
        (dt.datetime.fromisoformat(moments[1]) + dt.timedelta(seconds=n))
        .isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for n in (1, 2)
    ]  # fmt: skip
    for sent in (
        event("ObjectEvent", "receiving", "in_progress", chain.hub.gln, epcList=units,
              eventTime=later[0]),
        event("ObjectEvent", "shipping", "in_transit", chain.hub.gln, epcList=units,
              eventTime=later[1],
              destinationList=[{"type": "owning_party",
                                "destination": f"https://id.gs1.org/414/{chain.pharmacy.gln}"}]),
    ):  # fmt: skip
        response = _post_event(chain, chain.hub.token, {"@context": [CONTEXT], **sent})
        assert response.status_code == 201, response.text
    pharmacy = _events(_answer(chain, chain.pharmacy.token, **_window(moments[0])))
    assert pharmacy == [
        {k: v for k, v in commission.items()
         if k not in ("certificationInfo", "persistentDisposition", "example:myField")}
        | {"ilmd": {"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()}}
    ]  # fmt: skip
    shipped = {
        name: _events(_answer(chain, token, **_window(moments[1])))[0]
        for name, token in (("hub", chain.hub.token), ("pharmacy", chain.pharmacy.token),
                            ("regulator", _regulator(chain)))
    }  # fmt: skip
    assert shipped["hub"]["sensorElementList"] == SENSORS
    assert shipped["regulator"] == shipped["hub"]
    assert not {"sensorElementList", "bizTransactionList", "example:seal"} & set(
        shipped["pharmacy"]
    )


def test_pages_count_events_not_epcs(chain: Chain) -> None:
    moment = _time()
    events = [
        event("ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
              eventTime=moment, epcList=[unit_epc(new_serial()) for _ in range(3)],
              ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()})
        for _ in range(3)
    ]  # fmt: skip
    assert job(chain, chain.maker.token, post(chain, chain.maker.token, document(*events)))[
        "success"
    ]
    all_at_once = [
        e["eventID"] for e in _events(_answer(chain, chain.maker.token, **_window(moment)))
    ]
    assert len(all_at_once) == len(set(all_at_once)) == 3
    for per_page, sizes in (("1", [1, 1, 1]), ("2", [2, 1])):
        url: str | None = f"{chain.server.url}/epcis/events"
        params: dict[str, str] | None = {"perPage": per_page, **_window(moment)}
        paged, seen = [], []
        while url is not None:
            response = httpx.get(
                url, params=params, headers={"Authorization": f"Bearer {chain.maker.token}"}
            )
            page = _events(response.json())
            seen.append(len(page))
            paged += [e["eventID"] for e in page]
            link = response.headers.get("link")
            url, params = (link[1 : link.index(">")], None) if link else (None, None)
        assert (seen, paged) == (sizes, all_at_once)


def test_single_event_capture_answers_201_with_location_or_409(chain: Chain) -> None:
    serial, moment = new_serial(), _time()
    sent = {"@context": [CONTEXT], **event(
        "ObjectEvent", "commissioning", "active", chain.maker.gln, action="ADD",
        eventTime=moment, epcList=[unit_epc(serial)],
        eventID=f"ni:///sha-256;{secrets.token_hex(32)}?ver=CBV2.0",
        ilmd={"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()},
    )}  # fmt: skip

    created = _post_event(chain, chain.maker.token, sent)

    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/epcis/events/" + quote(sent["eventID"], safe="")
    assert _get(chain, chain.maker.token, created.headers["location"]).json() == sent
    before = chain.server.snapshot()
    for token, body, rule in (
        (chain.maker.token, sent, "epcis.duplicate_event"),
        (chain.maker.token, {**sent, "eventTime": _time()}, "epcis.duplicate_event"),
        (chain.hub.token, sent, "epcis.duplicate_event"),
        (
            chain.hub.token,
            {**sent, "eventID": f"urn:uuid:{uuid.uuid4()}"},
            "custody.wrong_location",
        ),
    ):
        again = _post_event(chain, token, body)
        assert (again.status_code, again.json()["detail"]["rule"]) == (409, rule)
    assert chain.server.snapshot() == before


def test_an_event_id_another_participant_holds_is_refused(chain: Chain) -> None:
    """A station's event has an EPCIS id too: reusing it would graft a document on it."""
    serial = new_serial()
    chain.commission(serial)
    (theirs,) = _events(_answer(chain, chain.maker.token, MATCH_epc=unit_epc(serial)))
    hijack = {"@context": [CONTEXT], **event(
        "ObjectEvent", "storing", "sellable_accessible", chain.hub.gln,
        epcList=[unit_epc(new_serial())], eventID=theirs["eventID"],
    )}  # fmt: skip
    before = chain.server.snapshot()
    response = _post_event(chain, chain.hub.token, hijack)
    assert response.status_code == 409 and chain.server.snapshot() == before, response.text


def test_a_custody_refusal_in_single_capture_names_its_rule_and_writes_nothing(
    chain: Chain,
) -> None:
    serial = new_serial()
    chain.commission(serial)
    steal = {"@context": [CONTEXT], **event(
        "ObjectEvent", "shipping", "in_transit", chain.hub.gln, epcList=[unit_epc(serial)],
        destinationList=[{"type": "owning_party",
                          "destination": f"https://id.gs1.org/414/{chain.pharmacy.gln}"}],
    )}  # fmt: skip
    before = chain.server.snapshot()
    response = _post_event(chain, chain.hub.token, steal)
    assert response.status_code == 409, response.text
    assert response.json()["detail"]["rule"].startswith("custody.")
    assert chain.server.snapshot() == before


def test_real_senders_variants_are_read(chain: Chain) -> None:
    """A dispensing sent with DELETE, terms as CBV 1.x URNs, web URIs and compact IRIs, and
    an EPCISQueryDocument posted to capture; a destruction with ADD stays refused."""
    serials = [new_serial(), new_serial()]
    chain.to_pharmacy(*serials)
    pharmacy = chain.pharmacy.gln
    dispense = event(
        "ObjectEvent", "urn:epcglobal:cbv:bizstep:dispensing",
        "https://ref.gs1.org/cbv/Disp-dispensed", pharmacy, action="DELETE",
        epcList=[unit_epc(serials[0])],
    )  # fmt: skip
    destroy = event(
        "ObjectEvent", "cbv:BizStep-destroying", "urn:epcglobal:cbv:disp:destroyed", pharmacy,
        epcList=[unit_epc(serials[1])],
    )  # fmt: skip
    query_doc = {
        "@context": [CONTEXT], "type": "EPCISQueryDocument", "schemaVersion": "2.0",
        "creationDate": "2026-11-22T10:00:00Z",
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                       "resultsBody": {"eventList": [dispense, destroy]}}},
    }  # fmt: skip
    wrong = post(chain, chain.pharmacy.token, document({**destroy, "action": "ADD"}))
    assert (wrong.status_code, wrong.json()["detail"]["rule"]) == (422, "epcis.action")

    result = job(chain, chain.pharmacy.token, post(chain, chain.pharmacy.token, query_doc))

    assert (result["success"], result["errors"]) == (True, [])
    pages = [
        httpx.get(f"{chain.server.url}/01/{GTIN}/21/{s}", headers={"Accept": "application/json"})
        for s in serials
    ]
    assert [page.json()["unit"]["state"] for page in pages] == ["dispensed", "destroyed"]
