"""The EPCIS 2.0 query interface on a live server (SQLite and PostgreSQL): every recorded
event in EPCIS, the SimpleEventQuery parameters, paging by ``Link``, lookup by event id."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest

from medtrace.demo import GTIN, with_check_digit
from medtrace.protocol.envelope import sign_event
from medtrace.scanners.station import Station
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.epcis import SCHEMA

FRIDGE = with_check_digit("952567800001")


def _signed(station: Station, kind: str, **fields: Any) -> dict[str, Any]:
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": fields.pop("event_time"),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


def _sgtin_urn(serial: str) -> str:
    return f"urn:epc:id:sgtin:9521234.{GTIN[0]}{GTIN[8:13]}.{serial}"


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """The story happened in March 2026: a replay window that reaches back that far."""
    ten_years = str(10 * 365 * 86_400)
    return {"MEDTRACE_REPLAY_WINDOW": ten_years, "MEDTRACE_CATCH_UP_WINDOW": ten_years}


@pytest.fixture(scope="module")
def story(chain: Chain) -> dict[str, Any]:
    """Three units: two packed in a case, shipped, received and unpacked; one stored."""
    a, b, c = (new_serial() for _ in range(3))
    case = with_check_digit("39521234" + f"{secrets.randbelow(10**9):09d}")
    maker, hub = chain.maker, chain.hub
    day = "2026-03-0{}T10:00:00.000+01:00"
    maker.api.capture(
        [
            *(
                maker.station.commission(GTIN, s, lot=LOT, expiry=EXPIRY, event_time=day.format(1))
                for s in (a, b, c)
            ),
            _signed(maker.station, "pack", sscc=case, event_time=day.format(2),
                    children=[{"gtin": GTIN, "serial": a}, {"gtin": GTIN, "serial": b}]),
            _signed(maker.station, "ship", sscc=case, destination_gln=hub.gln,
                    event_time=day.format(3)),
        ]
    )  # fmt: skip
    hub.api.capture(
        [
            _signed(hub.station, "receive", sscc=case, event_time=day.format(4)),
            _signed(hub.station, "unpack", sscc=case, event_time=day.format(5)),
            _signed(hub.station, "store", gtin=GTIN, serial=a, location_gln=FRIDGE,
                    event_time=day.format(6)),
        ]
    )  # fmt: skip
    return {"a": a, "b": b, "c": c, "case": case}


def _get(chain: Chain, path: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {chain.hub.token}"}
    return httpx.get(chain.server.url + path, params=params, headers=headers)


def _events(chain: Chain, **params: str) -> list[dict[str, Any]]:
    response = _get(chain, "/epcis/events", perPage="1000", **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ld+json"
    document = response.json()
    jsonschema.validate(document, SCHEMA)
    events: list[dict[str, Any]] = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def _steps(events: list[dict[str, Any]]) -> list[str]:
    return [e["bizStep"] for e in events]


def test_match_epc_finds_a_units_events_in_either_epc_form(
    chain: Chain, story: dict[str, Any]
) -> None:
    by_urn = _events(chain, MATCH_epc=_sgtin_urn(story["a"]))
    by_link = _events(chain, MATCH_epc=f"https://id.gs1.org/01/{GTIN}/21/{story['a']}")
    assert by_urn == by_link
    # The unpack lists no children: in EPCIS that takes every child out, this unit too.
    assert _steps(by_urn) == ["commissioning", "packing", "unpacking", "storing"]


def test_match_any_epc_includes_the_container_as_parent(
    chain: Chain, story: dict[str, Any]
) -> None:
    case = f"https://id.gs1.org/00/{story['case']}"
    assert _steps(_events(chain, MATCH_epc=case)) == ["shipping", "receiving"]
    assert _steps(_events(chain, MATCH_anyEPC=case)) == [
        "packing", "shipping", "receiving", "unpacking",
    ]  # fmt: skip
    packing = _events(chain, MATCH_anyEPC=case, eventType="AggregationEvent")
    assert [e["action"] for e in packing] == ["ADD", "DELETE"]
    assert packing[0]["childEPCs"] == [
        f"https://id.gs1.org/01/{GTIN}/21/{story[s]}" for s in ("a", "b")
    ]


def test_time_step_disposition_and_place_filters(chain: Chain, story: dict[str, Any]) -> None:
    epcs = "|".join(_sgtin_urn(story[s]) for s in ("a", "b", "c"))
    window = _events(
        chain,
        MATCH_anyEPC=epcs + f"|urn:epc:id:sscc:9521234.{story['case'][0]}{story['case'][8:17]}",
        GE_eventTime="2026-03-02T09:00:00Z",
        LT_eventTime="2026-03-04T09:00:00Z",
    )
    assert _steps(window) == ["packing", "shipping"]  # receiving: at LT_eventTime
    # c never left the maker: the hub reads the history of a and b only (the maker all three).
    commissioned = _events(chain, MATCH_epc=epcs, EQ_bizStep="commissioning")
    assert [e["epcList"][0].rsplit("/", 1)[1] for e in commissioned] == [story["a"], story["b"]]
    full_uri = "https://ref.gs1.org/cbv/Disp-sellable_accessible"
    stored = _events(chain, MATCH_epc=epcs, EQ_disposition=full_uri)
    assert _steps(stored) == ["storing"]
    assert stored[0]["bizLocation"] == {"id": f"https://id.gs1.org/414/{FRIDGE}"}
    fridge = _events(chain, EQ_bizLocation="urn:epc:id:sgln:9525678.00001.0")
    assert stored[0] in fridge
    hub_reads = _events(chain, EQ_readPoint=f"https://id.gs1.org/414/{chain.hub.gln}",
                        MATCH_anyEPC=f"https://id.gs1.org/00/{story['case']}")  # fmt: skip
    assert _steps(hub_reads) == ["receiving", "unpacking"]


def test_pages_follow_the_link_header_and_each_event_is_found_by_its_id(
    chain: Chain, story: dict[str, Any]
) -> None:
    everything = _events(chain)
    url: str | None = chain.server.url + "/epcis/events?perPage=2"
    paged: list[dict[str, Any]] = []
    forged_host = {"Host": "evil.example"}  # links come from the public URL, never from Host
    while url:
        response = httpx.get(
            url, headers={"Authorization": f"Bearer {chain.hub.token}", **forged_host}
        )
        paged += response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        link = response.headers.get("link")
        assert link is None or link.startswith(f"<{chain.server.url}/epcis/events?")
        url = link[1 : link.index(">")] if link else None
    assert paged == everything
    assert len(everything) >= 7, "the story's events but c's commissioning"
    for event in everything[-7:]:
        answer = _get(chain, "/epcis/events/" + quote(event["eventID"], safe=""))
        assert answer.status_code == 200, answer.text
        jsonschema.validate(answer.json(), SCHEMA)
        assert {k: v for k, v in answer.json().items() if k != "@context"} == event


@pytest.mark.parametrize(
    ("params", "status", "rule"),
    [
        ({"MATCH_epc": "urn:epc:id:grai:9521234.00001.1"}, 422, "epcis.bad_epc"),
        ({"EQ_bizLocation": f"https://id.gs1.org/01/{GTIN}/21/X"}, 422, "epcis.bad_epc"),
        ({"perPage": "0"}, 422, "epcis.per_page"),
        ({"nextPageToken": "abc"}, 422, "epcis.bad_token"),
        ({"GE_eventTime": "yesterday"}, 422, "input.invalid"),
        ({"GE_eventTime": "2026-03-02T09:00:00"}, 422, "epcis.naive_time"),
    ],
)
def test_bad_queries_name_the_problem(
    chain: Chain, params: dict[str, str], status: int, rule: str
) -> None:
    response = _get(chain, "/epcis/events", **params)
    assert (response.status_code, response.json()["detail"]["rule"]) == (status, rule)


def test_an_unknown_event_id_is_not_found_and_a_token_is_required(chain: Chain) -> None:
    response = _get(chain, "/epcis/events/" + quote("ni:///sha-256;00?ver=CBV2.0", safe=""))
    assert (response.status_code, response.json()["detail"]["rule"]) == (
        404,
        "epcis.unknown_event",
    )
    assert httpx.get(chain.server.url + "/epcis/events").status_code == 401
