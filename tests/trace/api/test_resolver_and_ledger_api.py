"""The Digital Link resolver, the ledger and station endpoints, through a real server."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
from unittest.mock import ANY

import httpx
import pytest

from medtrace.demo import GTIN
from medtrace.ledger import (
    NoteVerifier,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from medtrace.protocol.identifiers import digital_link_path
from medtrace.scanners.errors import CaptureRefused
from support.chain import EXPIRY, LOT, Chain, new_serial

JSON = {"Accept": "application/json"}


def _url(chain: Chain, serial: str, **kwargs: object) -> str:
    return chain.server.url + digital_link_path(GTIN, serial, **kwargs)  # type: ignore[arg-type]


def test_an_unknown_serial_is_a_clear_unknown_not_an_error(chain: Chain) -> None:
    as_json = httpx.get(_url(chain, "NEVERSEEN1"), headers=JSON)
    as_html = httpx.get(_url(chain, "NEVERSEEN1"), headers={"Accept": "text/html"})

    assert as_json.status_code == 404
    assert as_json.json()["verdict"] == "unknown"
    assert as_json.json()["events"] == []
    assert as_html.status_code == 404
    assert "never commissioned" in as_html.text
    assert 'data-verdict="unknown"' in as_html.text


def test_the_html_page_shows_verdict_product_and_timeline(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)

    page = httpx.get(_url(chain, serial, lot=LOT), headers={"Accept": "text/html"})

    assert page.status_code == 200
    assert 'data-verdict="genuine"' in page.text
    assert EXPIRY.isoformat() in page.text
    assert page.text.count("<li data-leaf-index=") == 5
    assert "Ruijin Hospital Pharmacy" in page.text


def test_verify_answers_are_briefly_cacheable_and_never_link_to_the_host_header(
    chain: Chain,
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    forged = {"Host": "evil.example"}

    page = httpx.get(_url(chain, serial, lot=LOT), headers={"Accept": "text/html", **forged})
    as_json = httpx.get(_url(chain, serial, lot=LOT), headers={**JSON, **forged})
    unknown = httpx.get(_url(chain, "NEVERSEEN2"), headers=JSON)
    switched = httpx.get(_url(chain, serial, lot=LOT), params={"lang": "en"})

    for answer in (page, as_json, unknown):
        assert answer.headers["cache-control"] == "public, max-age=0, s-maxage=60"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert (page.status_code, as_json.status_code, unknown.status_code) == (200, 200, 404)
    assert "evil.example" not in page.text + as_json.text
    assert as_json.json()["unit"]["digital_link"].startswith(chain.server.url)
    assert "set-cookie" in switched.headers
    assert switched.headers["cache-control"] == "private, no-cache", "a cookie is not shared"


def test_a_verify_answer_revalidates_with_its_etag_until_the_unit_changes(chain: Chain) -> None:
    """The answer is the same bytes until something happens to the pack, even on a shelf
    where no logger reads (its open temperature gap has no end yet, not "now")."""
    serial = new_serial()
    chain.to_pharmacy(serial)
    chain.server.wait_for_checkpoint(chain.server.leaves())  # the answer names the checkpoint
    url = _url(chain, serial, lot=LOT)
    shelved = httpx.get(url, headers=JSON)
    assert shelved.json()["temperature"]["gaps"][-1]["end"] is None
    revalidated = httpx.get(url, headers={**JSON, "If-None-Match": shelved.headers["etag"]})
    assert revalidated.status_code == 304
    pharmacy = chain.pharmacy
    pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    assert httpx.get(url, headers=JSON).headers["etag"] != shelved.headers["etag"]
    as_json, page = httpx.get(url, headers=JSON), httpx.get(url, headers={"Accept": "text/html"})
    chinese = httpx.get(url, headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
    tags = {answer.headers["etag"] for answer in (as_json, page, chinese)}
    assert len(tags) == 3, "JSON, the English page and the Chinese page are different bytes"

    held = as_json.headers["etag"]
    again = httpx.get(url, headers={**JSON, "If-None-Match": f'"other", W/{held}'})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", held)
    assert again.headers["cache-control"] == "public, max-age=0, s-maxage=60"
    assert httpx.get(url, headers={**JSON, "If-None-Match": '"other"'}).status_code == 200

    with contextlib.suppress(CaptureRefused):  # a dispensed pack dispensed again: suspect
        pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
    changed = httpx.get(url, headers={**JSON, "If-None-Match": held})
    assert changed.status_code == 200 and changed.json()["verdict"] == "suspect"
    assert changed.headers["etag"] != held
    unknown = httpx.get(_url(chain, "NEVERSEEN3"), headers=JSON)
    assert unknown.status_code == 404 and "etag" not in unknown.headers


def test_private_answers_are_never_stored_and_no_answer_is_sniffed(chain: Chain) -> None:
    url = chain.server.url
    mine = httpx.get(f"{url}/api/v1/alerts", headers={"Authorization": f"Bearer {chain.hub.token}"})
    refused = httpx.get(f"{url}/api/v1/alerts", headers={"Authorization": "Bearer nope"})
    login = httpx.get(f"{url}/portal/login")
    checkpoint = httpx.get(f"{url}/api/v1/ledger/checkpoint")

    assert (mine.status_code, refused.status_code, login.status_code) == (200, 401, 200)
    for answer in (mine, refused, login):
        assert answer.headers["cache-control"] == "no-store"
    assert checkpoint.headers["cache-control"] == "no-cache", "a route's own policy stands"
    for answer in (mine, refused, login, checkpoint):
        assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (f"/01/{GTIN[:-1]}9/21/ABC", "gs1.bad_check_digit"),
        ("/01/123/21/ABC", "gs1.gtin_format"),
        (f"/01/{GTIN}/21/AB%20C", "gs1.bad_character"),
        (f"/01/{GTIN}/21/ABC?17=261332", "gs1.bad_date"),
    ],
)
def test_a_malformed_link_gets_a_named_4xx(chain: Chain, path: str, rule: str) -> None:
    as_json = httpx.get(chain.server.url + path, headers=JSON)
    as_html = httpx.get(chain.server.url + path)

    assert as_json.status_code == 422
    assert as_json.json()["detail"]["rule"] == rule
    assert as_html.status_code == 422
    assert rule in as_html.text


def test_a_code_that_disagrees_with_the_log_is_suspect(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)

    wrong_lot = httpx.get(_url(chain, serial, lot="OTHERLOT"), headers=JSON).json()
    wrong_expiry = httpx.get(
        _url(chain, serial, expiry=EXPIRY + dt.timedelta(days=31)), headers=JSON
    ).json()

    assert wrong_lot["verdict"] == "suspect"
    assert "OTHERLOT" in wrong_lot["reasons"][0]
    assert wrong_expiry["verdict"] == "suspect"


def test_an_expired_unit_is_expired(chain: Chain) -> None:
    serial = new_serial()
    past = dt.date.today() - dt.timedelta(days=1)
    chain.maker.api.capture([chain.maker.station.commission(GTIN, serial, lot=LOT, expiry=past)])

    answer = httpx.get(_url(chain, serial), headers=JSON).json()

    assert answer["verdict"] == "expired"
    assert answer["reasons"] == [f"expired on {past.isoformat()}"]


def test_proofs_from_the_api_verify_against_signed_checkpoints(chain: Chain) -> None:
    url = chain.server.url
    key = httpx.get(f"{url}/api/v1/ledger/public-key").json()
    verifier = NoteVerifier.from_vkey(key["vkey"])
    raw = NoteVerifier(key["key_name"], base64.b64decode(key["public_key"]))
    assert raw.vkey == verifier.vkey
    chain.commission(new_serial())
    first = open_checkpoint(chain.server.wait_for_checkpoint(1), verifier)
    chain.commission(new_serial(), new_serial())
    second = open_checkpoint(chain.server.wait_for_checkpoint(first.size + 2), verifier)

    leaves = httpx.get(
        f"{url}/api/v1/ledger/leaves", params={"start": 0, "end": second.size}
    ).json()
    assert [leaf["index"] for leaf in leaves] == list(range(second.size))
    for leaf in leaves:
        proof = httpx.get(
            f"{url}/api/v1/ledger/proof/inclusion",
            params={"index": leaf["index"], "size": second.size},
        )
        assert "immutable" in proof.headers["cache-control"]
        assert verify_inclusion(
            leaf_hash(base64.b64decode(leaf["data"])),
            leaf["index"],
            second.size,
            [bytes.fromhex(h) for h in proof.json()],
            second.root_hash,
        )
    consistency = httpx.get(
        f"{url}/api/v1/ledger/proof/consistency", params={"from": first.size, "to": second.size}
    ).json()
    assert verify_consistency(
        first.size,
        second.size,
        first.root_hash,
        second.root_hash,
        [bytes.fromhex(h) for h in consistency],
    )


@pytest.mark.parametrize(
    ("path", "params", "rule"),
    [
        ("proof/inclusion", {"index": -1, "size": 1}, "ledger.bad_index"),
        ("proof/inclusion", {"index": 0, "size": 10**9}, "ledger.bad_size"),
        ("proof/inclusion", {"index": 5, "size": 1}, "ledger.bad_index"),
        ("proof/inclusion", {"index": "x", "size": 1}, "input.invalid"),
        ("proof/consistency", {"from": 2, "to": 1}, "ledger.bad_range"),
        ("proof/consistency", {"from": 0, "to": 1}, "ledger.bad_range"),
        ("leaves", {"start": 3, "end": 1}, "ledger.bad_range"),
        ("leaves", {"start": 0, "end": 5000}, "ledger.range_too_large"),
    ],
)
def test_bad_ledger_requests_get_a_named_4xx(
    chain: Chain, path: str, params: dict[str, object], rule: str
) -> None:
    chain.commission(new_serial(), new_serial())
    chain.server.wait_for_checkpoint(2)

    response = httpx.get(f"{chain.server.url}/api/v1/ledger/{path}", params=params)  # type: ignore[arg-type]

    assert response.status_code == 422
    assert response.json()["detail"]["rule"] == rule


def test_stations_are_public_and_registered_once(chain: Chain) -> None:
    station = httpx.get(f"{chain.server.url}/api/v1/stations/{chain.maker.station.station_id}")
    missing = httpx.get(f"{chain.server.url}/api/v1/stations/nobody")

    published = station.json()
    assert published.pop("keys") == [
        {
            "public_key": chain.maker.station.public_key,
            "valid_from": ANY,
            "valid_until": None,
            "revoked_at": None,
        }
    ]
    assert published == {
        "station_id": chain.maker.station.station_id,
        "participant": chain.maker.gln,
        "public_key": chain.maker.station.public_key,
        "active": True,
    }
    assert (missing.status_code, missing.json()["detail"]["rule"]) == (404, "station.unknown")
    with pytest.raises(CaptureRefused) as twice:
        chain.maker.api.register_station(
            chain.maker.station.station_id, chain.maker.station.public_key
        )
    assert (twice.value.status, twice.value.rule) == (409, "station.exists")
    with pytest.raises(CaptureRefused) as short_key:
        chain.maker.api.register_station("new-1", base64.b64encode(b"short").decode())
    assert (short_key.value.status, short_key.value.rule) == (422, "key.malformed")
