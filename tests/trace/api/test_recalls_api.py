"""Recalls and the blocking rules, through a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_capture_api import new_sscc, signed, units

from medtrace.demo import GTIN, DemoParticipant, Enrolled, enrol, with_check_digit
from medtrace.models import Role
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64, public_key_raw, write_key_file
from medtrace.scanners.errors import CaptureRefused
from support.chain import EXPIRY, Chain, new_serial
from support.epcis import SCHEMA
from support.live import MEDTRACE

JSON = {"Accept": "application/json"}
TODAY = dt.date.today()


def refused(chain: Chain, action: Callable[[], object]) -> CaptureRefused:
    """Run a request that must be refused, and prove it changed nothing."""
    before = chain.server.snapshot()
    with pytest.raises(CaptureRefused) as caught:
        action()
    assert chain.server.snapshot() == before
    return caught.value


@pytest.fixture(scope="module")
def regulator(chain: Chain) -> Iterator[Enrolled]:
    """A regulator with its own station."""
    who = DemoParticipant("NMPA", Role.REGULATOR, "Beijing", with_check_digit("952000100000"))
    member = enrol(chain.server.engine, who, Ed25519PrivateKey.generate(), chain.server.url)
    yield member
    member.api.close()


def commission_lot(chain: Chain, lot: str, count: int, expiry: dt.date = EXPIRY) -> list[str]:
    serials = [new_serial() for _ in range(count)]
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, s, lot=lot, expiry=expiry) for s in serials])
    return serials


def verdict(chain: Chain, serial: str) -> dict[str, Any]:
    answer = httpx.get(chain.server.url + digital_link_path(GTIN, serial), headers=JSON)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def alerts(chain: Chain, token: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{chain.server.url}/api/v1/alerts",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def reach(chain: Chain, token: str, lot: str) -> httpx.Response:
    return httpx.get(
        f"{chain.server.url}/api/v1/lots/{GTIN}/{lot}/recall",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_manufacturers_recall_flags_blocks_alerts_and_reports_its_reach(
    chain: Chain, regulator: Enrolled
) -> None:
    lot = "RC" + new_serial(6)
    serials = commission_lot(chain, lot, 5)
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    maker.api.capture([maker.station.ship(GTIN, s, to=hub.gln) for s in serials])
    hub.api.capture([hub.station.receive(GTIN, s) for s in serials])
    hub.api.capture([hub.station.ship(GTIN, s, to=pharmacy.gln) for s in serials[:3]])
    pharmacy.api.capture([pharmacy.station.receive(GTIN, s) for s in serials[:2]])
    pharmacy.api.capture([pharmacy.station.dispense(GTIN, serials[0])])
    # now: 0 dispensed, 1 at the pharmacy, 2 on its way to the pharmacy, 3-4 at the hub
    envelope = maker.station.recall(GTIN, lot, reason="sterility failure in batch testing")

    recorded = maker.api.recall(envelope)

    assert (recorded["lot"], recorded["recalled_by"]["gln"]) == (lot, maker.gln)
    assert recorded["epcis_id"].startswith("ni:///sha-256;")
    assert recorded["alerts_raised"] == 3, "the pharmacy, the hub, and the pharmacy as receiver"
    again = maker.api.recall(envelope)
    assert (again["leaf_index"], again["alerts_raised"]) == (recorded["leaf_index"], 0)

    held = verdict(chain, serials[1])
    assert held["verdict"] == "recalled"
    assert any("sterility failure" in r and lot in r for r in held["reasons"]), held["reasons"]
    assert verdict(chain, serials[0])["verdict"] == "recalled", "dispensed packs too"

    error = refused(
        chain, lambda: pharmacy.api.capture([pharmacy.station.dispense(GTIN, serials[1])])
    )
    assert (error.status, error.rule) == (409, "custody.recalled")
    error = refused(
        chain, lambda: hub.api.capture([hub.station.ship(GTIN, serials[3], to=pharmacy.gln)])
    )
    assert (error.status, error.rule) == (409, "custody.recalled")
    hub.api.capture([hub.station._signed("destroy", GTIN, serials[4])])  # destroying is allowed

    pharmacy_alerts = alerts(chain, pharmacy.token, kind="recall")
    assert sorted((a["rule"], a["unit_count"]) for a in pharmacy_alerts) == [
        ("recall.held", 1),
        ("recall.inbound", 1),
    ]
    hub_alerts = alerts(chain, hub.token, kind="recall")
    assert [(a["rule"], a["unit_count"], a["severity"]) for a in hub_alerts] == [
        ("recall.held", 3, "critical")
    ]
    assert hub_alerts[0]["evidence"]["reason"] == "sterility failure in batch testing"

    for token in (maker.token, regulator.token):
        report = reach(chain, token, lot)
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["counts"] | {"by_state": None} == {
            "units": 5,
            "dispensed": 1,
            "in_transit": 1,
            "held": 2,
            "out_of_chain": 1,
            "holders": 2,
            "by_state": None,
        }
        units = {u["serial"]: u for u in body["units"]}
        assert units[serials[0]]["dispensed"] is True
        assert units[serials[1]]["holder"]["gln"] == pharmacy.gln
        assert units[serials[2]]["destination_gln"] == pharmacy.gln
    for token in (hub.token, pharmacy.token):
        denied = reach(chain, token, lot)
        assert (denied.status_code, denied.json()["detail"]["rule"]) == (
            403,
            "recall.not_visible",
        )


def test_the_reach_comes_in_bounded_pages_with_the_whole_lots_counts_up_front(
    chain: Chain,
) -> None:
    lot = "PG" + new_serial(6)
    serials = commission_lot(chain, lot, 5)
    chain.maker.api.recall(chain.maker.station.recall(GTIN, lot, reason="paging"))
    url = f"{chain.server.url}/api/v1/lots/{GTIN}/{lot}/recall"
    auth = {"Authorization": f"Bearer {chain.maker.token}"}

    pages: list[dict[str, Any]] = []
    after: str | None = ""
    while after is not None:
        answer = httpx.get(url, params={"limit": 2, "after": after}, headers=auth)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        after = pages[-1]["next_after"]

    assert [len(p["units"]) for p in pages] == [2, 2, 1]
    assert all(p["counts"]["units"] == 5 and p["counts"]["held"] == 5 for p in pages)
    assert [u["serial"] for p in pages for u in p["units"]] == sorted(serials)
    for limit in (0, 1001):
        too = httpx.get(url, params={"limit": limit}, headers=auth)
        assert (too.status_code, too.json()["detail"]["rule"]) == (422, "input.invalid")


def test_a_regulator_recalls_a_pallet_that_then_cannot_move(
    chain: Chain, regulator: Enrolled
) -> None:
    lot = "RP" + new_serial(6)
    serials = commission_lot(chain, lot, 2)
    other = commission_lot(chain, "OK" + new_serial(6), 1)
    pallet = new_sscc()
    maker = chain.maker
    maker.api.capture([signed(maker, "pack", sscc=pallet, children=units(*serials, *other))])
    regulator.api.recall(regulator.station.recall(GTIN, lot, reason="falsified leaflet"))

    ship = signed(maker, "ship", sscc=pallet, destination_gln=chain.hub.gln)
    error = refused(chain, lambda: maker.api.capture([ship]))
    assert (error.status, error.rule) == (409, "custody.recalled")
    assert pallet in error.message and lot in error.message, error.message
    assert any(s in error.message for s in serials), error.message
    assert reach(chain, regulator.token, lot).json()["counts"]["held"] == 2


@pytest.mark.parametrize(
    ("who", "gtin", "lot", "status", "rule"),
    [
        ("hub", GTIN, None, 403, "recall.not_authorised"),
        ("pharmacy", GTIN, None, 403, "recall.not_authorised"),
        ("maker", "0" + with_check_digit("952999900011"), None, 403, "recall.not_authorised"),
        ("maker", GTIN, "NEVER1", 404, "recall.unknown_lot"),
        ("maker", GTIN, "TWICE", 409, "recall.already_recalled"),
    ],
)
def test_refused_recalls_name_their_rule_and_change_nothing(
    chain: Chain, who: str, gtin: str, lot: str | None, status: int, rule: str
) -> None:
    member: Enrolled = getattr(chain, who)
    if lot == "TWICE":
        lot = "TW" + new_serial(6)
        commission_lot(chain, lot, 1)
        chain.maker.api.recall(chain.maker.station.recall(GTIN, lot, reason="first"))
    elif lot is None:
        lot = "NA" + new_serial(6)
        commission_lot(chain, lot, 1)
    envelope = member.station.recall(gtin, lot, reason="a reason")
    error = refused(chain, lambda: member.api.recall(envelope))
    assert (error.status, error.rule) == (status, rule)


@pytest.mark.parametrize("kind", ["ship", "dispense"])
def test_an_expired_unit_is_neither_shipped_nor_dispensed(chain: Chain, kind: str) -> None:
    serial = commission_lot(chain, "EX" + new_serial(6), 1, expiry=TODAY - dt.timedelta(days=1))[0]
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    if kind == "ship":
        envelope = maker.station.ship(GTIN, serial, to=hub.gln)
        error = refused(chain, lambda: maker.api.capture([envelope]))
    else:
        # shipped while still in date (the event's own date decides), dispensed after expiry;
        # the shipment is two days old, so its station sends it as an offline catch-up
        day = (TODAY - dt.timedelta(days=2)).isoformat() + "T10:00:00Z"
        ship = maker.station.ship(GTIN, serial, to=pharmacy.gln, event_time=day)
        maker.api.capture([ship], catch_up=True)
        pharmacy.api.capture([pharmacy.station.receive(GTIN, serial)])
        error = refused(
            chain, lambda: pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
        )
    assert (error.status, error.rule) == (409, "custody.expired")
    assert str(TODAY - dt.timedelta(days=1)) in error.message


def test_the_recall_command_signs_and_prints_the_reach(
    chain: Chain, regulator: Enrolled, tmp_path: Path
) -> None:
    lot = "CL" + new_serial(6)
    commission_lot(chain, lot, 3)
    key_file = tmp_path / "reg-cli.pem"
    key = write_key_file(key_file)
    regulator.api.register_station("reg-cli", b64(public_key_raw(key)))
    result = subprocess.run(
        [
            str(MEDTRACE), "recall", "--gtin", GTIN, "--lot", lot, "--reason", "label mix-up",
            "--station-id", "reg-cli", "--key-file", str(key_file), "--gln", regulator.gln,
            "--token", regulator.token, "--url", chain.server.url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"recalled lot {lot}" in result.stdout
    assert "reach: 3 units; 3 held by 1 participants" in result.stdout
    assert f"Huaxin Pharmaceutical ({chain.maker.gln}): 3 units" in result.stdout
    again = subprocess.run(
        [
            str(MEDTRACE), "recall", "--gtin", GTIN, "--lot", lot, "--reason", "other",
            "--station-id", "reg-cli", "--key-file", str(key_file), "--gln", regulator.gln,
            "--token", regulator.token, "--url", chain.server.url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "recall.already_recalled" in again.stdout + again.stderr


@pytest.mark.parametrize(
    ("change", "status", "rule"),
    [
        ({"reason": ""}, 422, "recall.invalid"),
        ({"event_time": "2026-11-22T10:00:00"}, 422, "recall.invalid"),
        ({"gtin": "09521234000113"}, 422, "gs1.bad_check_digit"),
        ({"serial": "X1"}, 422, "recall.invalid"),
        ({"gln": "9525678000004"}, 422, "recall.sender"),
        ({"event_time": "2099-01-01T00:00:00Z"}, 422, "event.future_time"),
    ],
)
def test_malformed_recalls_name_their_rule_and_change_nothing(
    chain: Chain, change: dict[str, str], status: int, rule: str
) -> None:
    maker = chain.maker
    event = {
        **maker.station.recall(GTIN, "ANY1", reason="a reason")["event"],
        **change,
    }
    envelope = sign_event(event, station_id=maker.station.station_id, key=maker.station.key)
    error = refused(chain, lambda: maker.api.recall(envelope))
    assert (error.status, error.rule) == (status, rule)


def test_a_tampered_recall_and_a_bare_body_are_refused(chain: Chain) -> None:
    envelope = chain.maker.station.recall(GTIN, "ANY1", reason="a reason")
    envelope["event"]["lot"] = "ANY2"
    error = refused(chain, lambda: chain.maker.api.recall(envelope))
    assert (error.status, error.rule) == (403, "signature.invalid")
    response = httpx.post(
        f"{chain.server.url}/api/v1/recalls",
        json={"event": {}},
        headers={"Authorization": f"Bearer {chain.maker.token}"},
    )
    assert (response.status_code, response.json()["detail"]["rule"]) == (422, "input.invalid")
    unknown = reach(chain, chain.maker.token, "NEVERRECALLED")
    assert (unknown.status_code, unknown.json()["detail"]["rule"]) == (404, "recall.unknown")


def epcis_events(chain: Chain, **params: str) -> list[dict[str, Any]]:
    """The maker's view: its recalls and the destructions at its place are its own events."""
    response = httpx.get(
        f"{chain.server.url}/epcis/events",
        params={"perPage": "1000", **params},
        headers={"Authorization": f"Bearer {chain.maker.token}"},
    )
    assert response.status_code == 200, response.text
    jsonschema.validate(response.json(), SCHEMA)
    found: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"][
        "eventList"
    ]
    return found


def test_a_recall_is_queried_as_an_epcis_event_in_ledger_order(chain: Chain) -> None:
    lot = "EQ" + new_serial(6)
    serial = commission_lot(chain, lot, 1)[0]
    recorded = chain.maker.api.recall(chain.maker.station.recall(GTIN, lot, reason="mix-up"))
    chain.maker.api.capture([signed(chain.maker, "destroy", gtin=GTIN, serial=serial)])

    maker_place = f"https://id.gs1.org/414/{chain.maker.gln}"
    recalls = epcis_events(chain, EQ_disposition="recalled", EQ_readPoint=maker_place)
    mine = [e for e in recalls if e["eventID"] == recorded["epcis_id"]]
    assert len(mine) == 1
    assert mine[0]["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN}/10/{lot}"}]
    assert all(e["disposition"] == "recalled" for e in recalls)
    every = epcis_events(chain)
    ids = [e["eventID"] for e in every]
    assert recorded["epcis_id"] in ids
    assert ids.index(recorded["epcis_id"]) == len(ids) - 2, "before the destruction that followed"
    assert epcis_events(chain, EQ_bizStep="shipping", EQ_disposition="recalled") == []
    unit_only = epcis_events(chain, MATCH_epc=f"https://id.gs1.org/01/{GTIN}/21/{serial}")
    assert [e["bizStep"] for e in unit_only] == ["commissioning", "destroying"]
    one = httpx.get(
        f"{chain.server.url}/epcis/events/{quote(recorded['epcis_id'], safe='')}",
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert one.status_code == 200, one.text
    assert {k: v for k, v in one.json().items() if k != "@context"} == mine[0]
