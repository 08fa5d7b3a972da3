"""A receipt impossibly soon after its shipment, through a real server process whose minimum
transit time is ten minutes, and a receipt after a possible journey that raises nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path
from support.chain import EXPIRY, LOT, Chain, ago, new_serial, new_sscc

MIN_TRANSIT = 600


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"MEDTRACE_MIN_TRANSIT_SECONDS": str(MIN_TRANSIT)}


def commissioned(chain: Chain, *serials: str) -> None:
    maker = chain.maker
    maker.api.capture(
        [
            maker.station.commission(GTIN, s, lot=LOT, expiry=EXPIRY, event_time=ago(300))
            for s in serials
        ]
    )


def suspects(chain: Chain, serial: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{chain.server.url}/api/v1/alerts",
        params={"kind": "suspect"},
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert response.status_code == 200, response.text
    return [a for a in response.json()["data"] if serial in str(a["evidence"])]


def verdict(chain: Chain, serial: str) -> dict[str, Any]:
    answer = httpx.get(
        chain.server.url + digital_link_path(GTIN, serial), headers={"Accept": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_receipt_sooner_than_the_minimum_transit_is_accepted_but_suspect(chain: Chain) -> None:
    serial = new_serial()
    commissioned(chain, serial)
    maker, hub = chain.maker, chain.hub
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln, event_time=ago(120))])

    hub.api.capture([hub.station.receive(GTIN, serial, event_time=ago(118))])

    answer = verdict(chain, serial)
    assert (answer["unit"]["holder"]["gln"], answer["verdict"]) == (hub.gln, "suspect")
    assert any("120 s after it was shipped" in r for r in answer["reasons"]), answer["reasons"]
    [alert] = suspects(chain, serial)
    assert (alert["rule"], alert["gln"]) == ("suspect.impossible_transit", hub.gln)
    evidence = alert["evidence"]
    assert (evidence["shipped_by"], evidence["min_transit_seconds"]) == (maker.gln, MIN_TRANSIT)
    shipped = dt.datetime.fromisoformat(evidence["shipped_at"])
    received = dt.datetime.fromisoformat(evidence["received_at"])
    assert received - shipped == dt.timedelta(minutes=2)


def test_a_pallet_received_before_it_was_shipped_marks_every_unit(chain: Chain) -> None:
    serials, pallet = [new_serial(), new_serial()], new_sscc()
    commissioned(chain, *serials)
    maker, hub = chain.maker, chain.hub
    children = [{"gtin": GTIN, "serial": s} for s in serials]
    maker.api.capture(
        [
            maker.station.sign("pack", {"sscc": pallet}, children=children, event_time=ago(200)),
            maker.station.sign(
                "ship", {"sscc": pallet}, destination_gln=hub.gln, event_time=ago(60)
            ),
        ]
    )

    hub.api.capture([hub.station.sign("receive", {"sscc": pallet}, event_time=ago(90))])

    for serial in serials:
        answer = verdict(chain, serial)
        assert answer["verdict"] == "suspect"
        assert any("before it was shipped" in r for r in answer["reasons"]), answer["reasons"]
    [alert] = suspects(chain, serials[0])
    assert (alert["rule"], alert["unit_count"]) == ("suspect.impossible_transit", 2)
    assert sorted(alert["evidence"]["serials"]) == sorted(serials)


def test_a_receipt_after_a_possible_journey_raises_nothing(chain: Chain) -> None:
    serial = new_serial()
    commissioned(chain, serial)
    maker, hub = chain.maker, chain.hub
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln, event_time=ago(240))])

    hub.api.capture([hub.station.receive(GTIN, serial, event_time=ago(230))])

    assert verdict(chain, serial)["verdict"] == "genuine"
    assert suspects(chain, serial) == []
