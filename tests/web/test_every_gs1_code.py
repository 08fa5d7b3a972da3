"""Every serial and lot of GS1's character set 82 through the real routes of a live server
(SQLite and PostgreSQL): commissioned, verified (JSON, HTML, with and without its lot), read in
FHIR and EPCIS, linked from the portal, recalled and reached by its lot."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from medtrace.demo import GTIN
from medtrace.epcis.epc import unit_uri
from medtrace.fhir.ids import unit_id
from medtrace.protocol.identifiers import CSET82, digital_link_path
from support.chain import EXPIRY, Chain

#: The punctuation of set 82, exactly 20 characters: one serial that holds them all.
PUNCTUATION = "!\"%&'()*+,-./:;<=>?_"
X20 = st.text(st.sampled_from(sorted(CSET82)), min_size=1, max_size=20)
SHORT = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_commissioned: dict[str, set[str]] = {}


def _get(chain: Chain, path: str, **headers: str) -> httpx.Response:
    return httpx.get(chain.server.url + path, headers=headers, timeout=60)


def _commission(chain: Chain, serial: str, lot: str) -> None:
    """Commission ``serial`` once per server (hypothesis may draw a serial twice)."""
    seen = _commissioned.setdefault(chain.server.url, set())
    assume(serial not in seen)
    station = chain.maker.station
    chain.maker.api.capture([station.commission(GTIN, serial, lot=lot, expiry=EXPIRY)])
    seen.add(serial)


@SHORT
@example(serial=PUNCTUATION, lot=PUNCTUATION[::-1])
@example(serial="S/1", lot="LOT/9")
@given(serial=X20, lot=X20)
def test_every_serial_and_lot_of_set_82_verifies_in_every_form(
    chain: Chain, serial: str, lot: str
) -> None:
    _commission(chain, serial, lot)
    for path in (
        digital_link_path(GTIN, serial, lot=lot, expiry=EXPIRY),
        digital_link_path(GTIN, serial),
    ):
        answer = _get(chain, path, accept="application/json")
        assert answer.status_code == 200, (path, answer.text)
        unit = answer.json()["unit"]
        assert (unit["serial"], unit["lot"]) == (serial, lot)
        link = digital_link_path(GTIN, serial, lot=lot, expiry=EXPIRY)
        assert unit["digital_link"] == chain.server.url + link
        page = _get(chain, path)
        assert page.status_code == 200, (path, page.text)
        assert str(escape(serial)) in page.text
    device = _get(chain, f"/fhir/Device/{unit_id(GTIN, serial)}").json()
    assert (device["serialNumber"], device["lotNumber"]) == (serial, lot)
    events = httpx.get(
        f"{chain.server.url}/epcis/events",
        params={"MATCH_epc": unit_uri(GTIN, serial)},
        headers={"Authorization": f"Bearer {chain.maker.token}"},
        timeout=60,
    ).json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["epcList"] for e in events] == [[unit_uri(GTIN, serial)]]


@SHORT
@given(serial=X20)
def test_a_serial_percent_encoded_any_way_names_the_same_unit(chain: Chain, serial: str) -> None:
    """GS1 Digital Link lets a client encode any character, or only those it must: both
    spellings reach the same unit."""
    _commission(chain, serial, "L1")
    everything = "".join(f"%{b:02X}" for b in serial.encode())
    for spelling in (everything, quote(serial, safe="!'()*+,;=:")):
        answer = _get(chain, f"/01/{GTIN}/21/{spelling}", accept="application/json")
        assert answer.status_code == 200, (spelling, answer.text)
        assert answer.json()["unit"]["serial"] == serial


def test_a_serial_outside_set_82_is_refused_naming_the_serial_and_the_character(
    chain: Chain,
) -> None:
    answer = _get(chain, f"/01/{GTIN}/21/A%C3%A9B", accept="application/json")
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail["rule"] == "gs1.bad_character"
    assert "serial" in detail["message"] and "'é'" in detail["message"]
