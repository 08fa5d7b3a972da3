"""Suspect patterns fired by scenarios through a real server process, and clean scenarios that
fire nothing. This module's server accepts receipts of what was shipped elsewhere (flagged
suspect) and watches public verifications with low thresholds."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from medtrace.demo import GTIN
from medtrace.models.suspects import PublicVerificationCount
from medtrace.protocol.identifiers import digital_link_path
from medtrace.scanners.errors import CaptureRefused
from support.chain import Chain, ago, new_serial
from support.live import LiveServer, start_server

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The chain's server, with the flag_suspect receipt policy and a verify watch of 4
    requests from 3 places (networks) within an hour. It believes X-Forwarded-For from
    127.0.0.1, as the API behind a proxy on the same host would: the tests are that proxy."""
    live = start_server(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        env={
            "MEDTRACE_RECEIPT_POLICY": "flag_suspect",
            "MEDTRACE_SUSPECT_VERIFY_REQUESTS": "4",
            "MEDTRACE_SUSPECT_VERIFY_PLACES": "3",
            "MEDTRACE_SUSPECT_VERIFY_WINDOW": "3600",
            "MEDTRACE_TRUSTED_PROXIES": '["127.0.0.1"]',
        },
    )
    try:
        yield live
    finally:
        live.stop()


def suspects(chain: Chain, token: str, serial: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{chain.server.url}/api/v1/alerts",
        params={"kind": "suspect"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return [a for a in response.json()["data"] if serial in str(a["evidence"])]


def verify(chain: Chain, serial: str, *, place: str = "198.51.100.7") -> dict[str, Any]:
    answer = httpx.get(
        chain.server.url + digital_link_path(GTIN, serial),
        headers={**JSON, "X-Forwarded-For": place},
    )
    assert answer.status_code in (200, 404), answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_serial_never_commissioned_is_refused_and_reported_with_its_presenter(
    chain: Chain,
) -> None:
    ghost = new_serial()
    pharmacy = chain.pharmacy
    before = chain.server.snapshot()
    with pytest.raises(CaptureRefused) as refused:
        pharmacy.api.capture([pharmacy.station.dispense(GTIN, ghost)])
    assert refused.value.rule == "custody.unknown_unit"
    assert chain.server.snapshot() == before, "the refused move wrote nothing"

    [alert] = suspects(chain, pharmacy.token, ghost)
    assert (alert["rule"], alert["gln"], alert["gtin"]) == (
        "suspect.never_commissioned",
        pharmacy.gln,
        GTIN,
    )
    assert alert["evidence"]["presented_by"] == pharmacy.gln
    assert "Ruijin Hospital Pharmacy" in alert["message"]
    assert suspects(chain, chain.maker.token, ghost), "the GTIN's manufacturer sees it too"
    assert suspects(chain, chain.hub.token, ghost) == []


@pytest.mark.parametrize("again", ["dispense", "receive"])
def test_a_dispensed_pack_presented_again_is_refused_and_marked_suspect(
    chain: Chain, again: str
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy = chain.pharmacy
    pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
    assert verify(chain, serial)["verdict"] == "genuine"
    envelope = (
        pharmacy.station.dispense(GTIN, serial, event_time=ago(1))
        if again == "dispense"
        else pharmacy.station.receive(GTIN, serial)
    )
    with pytest.raises(CaptureRefused) as refused:
        pharmacy.api.capture([envelope])
    assert refused.value.rule == "custody.final_state"

    [alert] = suspects(chain, pharmacy.token, serial)
    assert alert["rule"] == "suspect.after_dispense"
    assert alert["evidence"]["dispensed_by"] == pharmacy.gln
    answer = verify(chain, serial)
    assert answer["verdict"] == "suspect"
    assert any("copied" in r for r in answer["reasons"]), answer["reasons"]


def test_a_serial_in_another_sites_stock_is_a_clone_refused_and_reported(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln)])
    hub.api.capture([hub.station.receive(GTIN, serial)])
    before = chain.server.snapshot()

    with pytest.raises(CaptureRefused) as refused:
        pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])

    assert refused.value.rule == "custody.not_holder"
    assert chain.server.snapshot() == before, "the refused move wrote nothing"
    [alert] = suspects(chain, pharmacy.token, serial)
    assert (alert["rule"], alert["severity"], alert["gln"]) == (
        "suspect.clone",
        "critical",
        pharmacy.gln,
    )
    assert (alert["evidence"]["presented_by"], alert["evidence"]["held_by"]) == (
        pharmacy.gln,
        hub.gln,
    )
    assert "Ruijin Hospital Pharmacy" in alert["message"]
    answer = verify(chain, serial)
    assert (answer["unit"]["holder"]["gln"], answer["verdict"]) == (hub.gln, "suspect")
    assert any("two places" in r for r in answer["reasons"]), answer["reasons"]


def test_presenting_a_unit_still_on_its_way_is_refused_but_not_a_clone(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    maker, hub = chain.maker, chain.hub
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln)])

    with pytest.raises(CaptureRefused) as refused:
        hub.api.capture([hub.station.ship(GTIN, serial, to=chain.pharmacy.gln)])

    assert refused.value.rule == "custody.not_holder", "shipped on before its receipt was scanned"
    assert suspects(chain, hub.token, serial) == []
    assert verify(chain, serial)["verdict"] == "genuine"


def test_a_receipt_not_shipped_to_the_receiver_is_accepted_but_flagged(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln)])

    pharmacy.api.capture([pharmacy.station.receive(GTIN, serial)])

    answer = verify(chain, serial)
    assert (answer["unit"]["holder"]["gln"], answer["verdict"]) == (pharmacy.gln, "suspect")
    [alert] = suspects(chain, pharmacy.token, serial)
    assert alert["rule"] == "suspect.not_shipped_to_you"
    assert alert["evidence"]["shipped_to"] == hub.gln
    with pytest.raises(CaptureRefused) as refused:
        pharmacy.api.capture([pharmacy.station.receive(GTIN, serial, event_time=ago(1))])
    assert refused.value.rule == "custody.not_shipped_to_you", "receiving what you hold"


def test_a_flagged_receipt_in_a_refused_batch_leaves_no_trace(chain: Chain) -> None:
    serial, ghost = new_serial(), new_serial()
    chain.commission(serial)
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln)])
    before = chain.server.snapshot()
    batch = [pharmacy.station.receive(GTIN, serial), pharmacy.station.receive(GTIN, ghost)]
    with pytest.raises(CaptureRefused) as refused:
        pharmacy.api.capture(batch)
    assert (refused.value.rule, refused.value.index) == ("custody.unknown_unit", 1)
    assert chain.server.snapshot() == before
    assert verify(chain, serial)["verdict"] == "genuine", "the diversion never happened"
    assert suspects(chain, pharmacy.token, serial) == []
    assert [a["rule"] for a in suspects(chain, pharmacy.token, ghost)] == [
        "suspect.never_commissioned"
    ]


def test_a_dispensed_pack_verified_from_many_places_turns_suspect_once(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy = chain.pharmacy
    pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])

    for place in ("203.0.113.5", "203.0.113.77", "198.51.100.1"):  # 2 networks: not enough
        assert verify(chain, serial, place=place)["verdict"] == "genuine"
    answer = verify(chain, serial, place="192.0.2.9")  # 4 requests, 3 networks

    assert answer["verdict"] == "suspect"
    assert any("verified 4 times from 3 places" in r for r in answer["reasons"]), answer
    verify(chain, serial, place="192.0.2.10")
    [alert] = suspects(chain, pharmacy.token, serial)
    assert (alert["rule"], alert["evidence"]["requests"]) == ("suspect.verified_after_dispense", 4)
    deadline = time.monotonic() + 10  # the counts are written in batches, twice a second
    while (places := _written_requests(chain, serial)).total() < 5:
        assert time.monotonic() < deadline, places
        time.sleep(0.1)
    assert places.total() == 5 and all(len(p) == 64 and "203.0" not in p for p in places)


def _written_requests(chain: Chain, serial: str) -> Counter[str]:
    """The unit's public verifications written so far, per hashed place."""
    counts = PublicVerificationCount
    statement = select(counts.place_hash, counts.count).where(counts.serial == serial)
    written: Counter[str] = Counter()
    with chain.server.engine.connect() as conn:
        for place, count in conn.execute(statement):
            written[place] += count
    return written


def test_the_clean_path_raises_no_suspicion(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy = chain.pharmacy
    before = verify(chain, serial)  # verified before dispense: not counted
    pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
    for _ in range(6):  # many times, but from one place: a patient checking twice
        assert verify(chain, serial)["verdict"] == "genuine"
    assert before["verdict"] == "genuine"
    assert suspects(chain, pharmacy.token, serial) == []
    deadline = time.monotonic() + 10  # the counts are written in batches, twice a second
    while (places := _written_requests(chain, serial)).total() < 6:
        assert time.monotonic() < deadline, places
        time.sleep(0.1)
    assert list(places.values()) == [6]  # one place
