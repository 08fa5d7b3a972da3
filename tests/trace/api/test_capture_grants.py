"""Capture grants (issue 19 §5) on a live server, SQLite and PostgreSQL: a 3PL captures in
the distributor's warehouse under the distributor's grant, through its stations and its
EPCIS documents; without a grant, after its end or its revocation, the refusal stays
``custody.wrong_location``; and the grant itself resists its grantee and outsiders."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from independent_checker import check_url
from medtrace import ledger
from medtrace.bounds import MAX_INTEGER
from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Role, Unit
from medtrace.models.grants import CaptureGrant
from medtrace.protocol.identifiers import digital_link_path
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import CaptureRefused
from medtrace.scanners.station import Station
from support.chain import LOT, Chain, new_serial
from support.fhir import dispense_of
from support.iot import new_participant
from support.live import run_cli
from support.portal import logged_in

GRANTS = "/api/v1/capture-grants"
#: Every character of GS1's set 82 that is not a digit or letter: none belongs in a GLN.
CSET82_PUNCTUATION = "!\"%&'()*+,-./:;<=>?_"


@dataclass
class Party:
    """A participant made for one test, with a station and a client."""

    gln: str
    token: str
    api: CaptureClient

    def station_at(self, gln: str) -> Station:
        """A station of this participant, registered, that signs events at ``gln``."""
        station = Station(f"st-{secrets.token_hex(4)}", gln, Ed25519PrivateKey.generate())
        self.api.register_station(station.station_id, station.public_key)
        return station


@pytest.fixture
def third_party(chain: Chain) -> Iterator[Party]:
    """A 3PL (a distributor of its own) that runs the hub's warehouse."""
    gln, token = new_participant(chain.server, Role.DISTRIBUTOR)
    api = CaptureClient(chain.server.url, token)
    yield Party(gln, token, api)
    api.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tomorrow() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()


def grant(chain: Chain, token: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{chain.server.url}{GRANTS}", json=body, headers=_auth(token))


def granted(chain: Chain, grantor_token: str, grantee: str, gln: str) -> dict[str, Any]:
    """A grant that must be created."""
    answer = grant(chain, grantor_token, grantee=grantee, gln=gln, ends_at=_tomorrow())
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def revoke(chain: Chain, token: str, grant_id: int) -> httpx.Response:
    return httpx.post(f"{chain.server.url}{GRANTS}/{grant_id}/revoke", headers=_auth(token))


def listed(chain: Chain, token: str) -> list[int]:
    return [g["id"] for g in _grants(chain, token)]


def shipped_to_hub(chain: Chain) -> str:
    """A new unit on its way from the manufacturer to the hub."""
    serial = new_serial()
    chain.commission(serial)
    chain.maker.api.capture([chain.maker.station.ship(GTIN, serial, to=chain.hub.gln)])
    return serial


def refused_nothing_written(chain: Chain, party: Party, envelope: dict[str, Any]) -> str:
    """Capture that must be refused and change nothing; its rule."""
    before = chain.server.snapshot()
    with pytest.raises(CaptureRefused) as refused:
        party.api.capture([envelope])
    assert chain.server.snapshot() == before
    return refused.value.rule


def leaf(chain: Chain, index: int) -> dict[str, Any]:
    with chain.server.engine.connect() as conn:
        data = ledger.leaves_at(conn, [index])[index]
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def custody_of(chain: Chain, serial: str) -> tuple[str, str]:
    """The unit's state and holder, as the store has them."""
    with chain.server.engine.connect() as conn:
        row = conn.execute(
            Unit.__table__.select().where(Unit.gtin == GTIN, Unit.serial == serial)  # type: ignore[attr-defined]
        ).one()
    return str(row.state), str(row.holder_gln)


def holder(chain: Chain, serial: str) -> str:
    return custody_of(chain, serial)[1]


# --- capture for a principal ------------------------------------------------------------------


def test_a_3pl_captures_for_the_distributor_only_under_its_grant(
    chain: Chain, third_party: Party
) -> None:
    """Without a grant the 3PL's receipt at the hub is refused as before; with one, it is the
    hub's receipt (the hub holds the unit and ships it on) and the leaf names who captured."""
    serial = shipped_to_hub(chain)
    at_hub = third_party.station_at(chain.hub.gln)
    receipt = at_hub.receive(GTIN, serial)
    assert refused_nothing_written(chain, third_party, receipt) == "custody.wrong_location"

    created = granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    assert (created["grantor"], created["grantee"], created["gln"], created["active"]) == (
        chain.hub.gln,
        third_party.gln,
        chain.hub.gln,
        True,
    )
    assert created["granted_by"] == f"api:{chain.hub.gln}"
    (result,) = third_party.api.capture([receipt])

    assert holder(chain, serial) == chain.hub.gln
    recorded = leaf(chain, result["leaf_index"])
    assert recorded["captured_by"] == third_party.gln
    assert recorded["event"]["gln"] == chain.hub.gln
    # The hub's own station ships what the 3PL received for it, and the 3PL ships on too.
    chain.hub.api.capture([chain.hub.station.ship(GTIN, serial, to=chain.pharmacy.gln)])
    chain.pharmacy.api.capture([chain.pharmacy.station.receive(GTIN, serial)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    checks = check_url(chain.server.url + digital_link_path(GTIN, serial, lot=LOT))
    assert {c.status for c in checks} == {"ok"}, checks


def test_a_grant_for_one_gln_opens_no_other(chain: Chain, third_party: Party) -> None:
    """Granted the hub, the 3PL may not receive at the pharmacy, nor store the hub's goods
    at the pharmacy's site."""
    granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    serial = new_serial()
    chain.to_pharmacy(serial)
    at_pharmacy = third_party.station_at(chain.pharmacy.gln)
    dispense = at_pharmacy.dispense(GTIN, serial)
    assert refused_nothing_written(chain, third_party, dispense) == "custody.wrong_location"

    held = shipped_to_hub(chain)
    at_hub = third_party.station_at(chain.hub.gln)
    third_party.api.capture([at_hub.receive(GTIN, held)])
    elsewhere = at_hub.sign(
        "store", {"gtin": GTIN, "serial": held}, location_gln=chain.pharmacy.gln
    )
    assert refused_nothing_written(chain, third_party, elsewhere) == "custody.wrong_location"


def test_a_revoked_grant_stops_the_next_capture(chain: Chain, third_party: Party) -> None:
    """Only the grantor revokes (the grantee and an outsider are refused, by name); from
    then on the 3PL's receipt is refused, and the audit shows who revoked it and when."""
    created = granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    first, second = shipped_to_hub(chain), shipped_to_hub(chain)
    at_hub = third_party.station_at(chain.hub.gln)
    third_party.api.capture([at_hub.receive(GTIN, first)])

    for token in (third_party.token, chain.pharmacy.token):
        answer = revoke(chain, token, created["id"])
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"]["rule"] == "capture_grant.not_yours"
    answer = revoke(chain, chain.hub.token, created["id"])
    assert answer.status_code == 200, answer.text
    revoked = answer.json()
    assert (revoked["active"], revoked["revoked_by"]) == (False, f"api:{chain.hub.gln}")
    assert revoked["revoked_at"] is not None

    receipt = at_hub.receive(GTIN, second)
    assert refused_nothing_written(chain, third_party, receipt) == "custody.wrong_location"


def test_an_ended_grant_is_no_grant(chain: Chain, third_party: Party) -> None:
    created = granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    with chain.server.engine.begin() as conn:  # the end date passes
        conn.execute(
            update(CaptureGrant)
            .where(CaptureGrant.id == created["id"])  # type: ignore[arg-type]
            .values(ends_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    receipt = third_party.station_at(chain.hub.gln).receive(GTIN, shipped_to_hub(chain))
    assert refused_nothing_written(chain, third_party, receipt) == "custody.wrong_location"
    assert not next(g for g in _grants(chain, chain.hub.token) if g["id"] == created["id"])[
        "active"
    ]


def test_a_contract_packer_commissions_in_the_manufacturers_prefix_under_its_grant(
    chain: Chain, third_party: Party
) -> None:
    """The principal's role and company prefix decide: the packer commissions the maker's
    GTIN as the maker, and the unit is the maker's."""
    granted(chain, chain.maker.token, third_party.gln, chain.maker.gln)
    serial = new_serial()
    packer = third_party.station_at(chain.maker.gln)
    expiry = dt.date.today() + dt.timedelta(days=300)
    third_party.api.capture([packer.commission(GTIN, serial, lot=LOT, expiry=expiry)])
    assert holder(chain, serial) == chain.maker.gln


# --- EPCIS documents ----------------------------------------------------------------------


def _epcis(chain: Chain, token: str, serial: str) -> dict[str, Any]:
    """Post an EPCIS receipt of ``serial`` at the hub; the capture job."""
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-22T10:00:00Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "eventTimeZoneOffset": "+00:00",
                    "action": "OBSERVE",
                    "bizStep": "receiving",
                    "disposition": "in_progress",
                    "epcList": [f"urn:epc:id:sgtin:9521234.{GTIN[0]}{GTIN[8:13]}.{serial}"],
                    "readPoint": {"id": f"https://id.gs1.org/414/{chain.hub.gln}"},
                    "bizTransactionList": [{"type": "po", "bizTransaction": f"urn:x:po:{serial}"}],
                }
            ]
        },
    }
    posted = httpx.post(
        chain.server.url + "/epcis/capture",
        json=document,
        headers={**_auth(token), "Content-Type": "application/ld+json"},
    )
    assert posted.status_code == 202, posted.text
    answer = httpx.get(chain.server.url + posted.headers["location"], headers=_auth(token))
    result: dict[str, Any] = answer.json()
    return result


def test_an_integration_partner_sends_epcis_for_its_principal_under_a_grant(
    chain: Chain, third_party: Party
) -> None:
    serial = shipped_to_hub(chain)
    before = chain.server.snapshot()
    refused = _epcis(chain, third_party.token, serial)
    assert not refused["success"]
    assert refused["errors"][0]["rule"] == "custody.wrong_location"
    assert chain.server.snapshot() == before

    granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    size = chain.server.leaves()
    assert _epcis(chain, third_party.token, serial)["success"]
    assert holder(chain, serial) == chain.hub.gln
    recorded = leaf(chain, size)
    assert (recorded["participant"], recorded["event"]["gln"]) == (third_party.gln, chain.hub.gln)
    # the event is the principal's: it reads it whole, as its sender does; others who read it
    # at all (the maker: the unit was at its GLN) read its custody record; a participant party
    # to nothing of the unit (the pharmacy) reads nothing of it
    for token, whole in ((chain.hub.token, True), (third_party.token, True),
                         (chain.maker.token, False), (chain.pharmacy.token, None)):  # fmt: skip
        answer = httpx.get(
            chain.server.url + "/epcis/events",
            params={"MATCH_epc": f"urn:epc:id:sgtin:9521234.{GTIN[0]}{GTIN[8:13]}.{serial}",
                    "EQ_bizStep": "receiving"},
            headers=_auth(token),
        )  # fmt: skip
        events = answer.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        if whole is None:
            assert events == []
            continue
        (event,) = events
        assert ("bizTransactionList" in event) is whole


def test_a_hospital_system_posts_the_pharmacys_dispense_under_its_grant(
    chain: Chain, third_party: Party
) -> None:
    """FHIR is a capture path too: the dispense at the pharmacy's Location is refused until
    the pharmacy grants the sender its GLN, then recorded as the pharmacy's."""
    serial = new_serial()
    chain.to_pharmacy(serial)
    resource = dispense_of(serial) | {"location": {"reference": f"Location/{chain.pharmacy.gln}"}}

    def post() -> httpx.Response:
        return httpx.post(
            f"{chain.server.url}/fhir/MedicationDispense",
            json=resource,
            headers=_auth(third_party.token),
        )

    before = chain.server.snapshot()
    refused = post()
    assert refused.status_code == 409, refused.text
    assert "custody.wrong_location" in refused.text
    assert chain.server.snapshot() == before
    granted(chain, chain.pharmacy.token, third_party.gln, chain.pharmacy.gln)
    assert post().status_code == 201
    assert custody_of(chain, serial) == ("dispensed", chain.pharmacy.gln)


# --- the grant itself: who may give, see and take it back -----------------------------------


def _grants(chain: Chain, token: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{chain.server.url}{GRANTS}", headers=_auth(token))
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def test_both_parties_list_a_grant_and_no_one_else_does(chain: Chain, third_party: Party) -> None:
    created = granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    _, regulator_token = new_participant(chain.server, Role.REGULATOR)
    assert created["id"] in listed(chain, chain.hub.token)
    assert created["id"] in listed(chain, third_party.token)
    assert created["id"] in listed(chain, regulator_token)
    assert created["id"] not in listed(chain, chain.pharmacy.token)


def test_the_portal_lists_a_grant_to_both_parties_only(chain: Chain, third_party: Party) -> None:
    """The portal page reads what the API lists: the grantor and the grantee see the grant,
    with who created and revoked it; another participant does not."""
    created = granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    assert revoke(chain, chain.hub.token, created["id"]).status_code == 200
    row = re.compile(rf'<tr class="muted" data-active="no"><td>{created["id"]}</td>')
    for token in (chain.hub.token, third_party.token):
        with logged_in(chain, token=token) as client:
            page = client.get("/portal/grants")
        assert page.status_code == 200, page.text
        assert row.search(page.text), page.text
        assert page.text.count(f"api:{chain.hub.gln}") >= 2  # granted and revoked by the hub
    with logged_in(chain, token=chain.pharmacy.token) as client:
        page = client.get("/portal/grants")
    assert page.status_code == 200 and not row.search(page.text)


def test_one_grant_at_a_time_so_that_a_revocation_means_it(
    chain: Chain, third_party: Party
) -> None:
    created = granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    again = grant(
        chain, chain.hub.token, grantee=third_party.gln, gln=chain.hub.gln, ends_at=_tomorrow()
    )
    assert (again.status_code, again.json()["detail"]["rule"]) == (409, "capture_grant.exists")
    assert revoke(chain, chain.hub.token, created["id"]).status_code == 200
    granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)  # a new one after it


def test_a_grantee_cannot_pass_its_principals_gln_on(chain: Chain, third_party: Party) -> None:
    """Re-granting is granting a GLN one does not own: refused by name, and the outsider
    it was meant for still captures nothing at the hub."""
    granted(chain, chain.hub.token, third_party.gln, chain.hub.gln)
    outsider = new_participant(chain.server, Role.DISTRIBUTOR)
    answer = grant(
        chain, third_party.token, grantee=outsider[0], gln=chain.hub.gln, ends_at=_tomorrow()
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"]["rule"] == "capture_grant.not_your_gln"
    client = CaptureClient(chain.server.url, outsider[1])
    try:
        party = Party(outsider[0], outsider[1], client)
        receipt = party.station_at(chain.hub.gln).receive(GTIN, shipped_to_hub(chain))
        assert refused_nothing_written(chain, party, receipt) == "custody.wrong_location"
    finally:
        client.close()


def _hostile_bodies(chain: Chain, grantee: str) -> Iterator[tuple[dict[str, Any], int, str]]:
    """(body, status, rule) of grants the hub must be refused."""
    mine = chain.hub.gln

    def body(who: str = grantee, gln: str = mine, ends_at: str | None = None) -> dict[str, Any]:
        return {"grantee": who, "gln": gln, "ends_at": ends_at or _tomorrow()}

    yield body(gln=chain.maker.gln), 403, "capture_grant.not_your_gln"
    yield body(who=mine), 422, "capture_grant.self"
    yield body(who=with_check_digit("952000099999")), 404, "participant.unknown"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    for end in (past, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        yield body(ends_at=end), 422, "capture_grant.bad_end"
    for char in CSET82_PUNCTUATION:
        wrong = mine[:6] + char + mine[7:]
        yield body(who=wrong), 422, "gs1.gln_format"
        yield body(gln=wrong), 422, "gs1.gln_format"
    yield body(gln=mine[:-1] + str((int(mine[-1]) + 1) % 10)), 422, "gs1.bad_check_digit"


def test_hostile_grants_are_refused_by_rule_and_create_nothing(
    chain: Chain, third_party: Party
) -> None:
    before = listed(chain, chain.hub.token)
    for body, status, rule in _hostile_bodies(chain, third_party.gln):
        answer = grant(chain, chain.hub.token, **body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["detail"]["rule"] == rule, (body, answer.text)
    for body in (
        {"grantee": third_party.gln, "gln": chain.hub.gln, "ends_at": "2030-01-01T00:00:00"},
        {"grantee": third_party.gln, "gln": chain.hub.gln},
        {"grantee": third_party.gln, "gln": chain.hub.gln, "ends_at": _tomorrow(), "x": 1},
    ):
        answer = grant(chain, chain.hub.token, **body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"]["rule"], answer.text
    assert listed(chain, chain.hub.token) == before
    for bad_id in ("0", "-1", str(2**63), "1;DROP"):
        answer = httpx.post(
            f"{chain.server.url}{GRANTS}/{bad_id}/revoke", headers=_auth(chain.hub.token)
        )
        assert answer.status_code == 422, (bad_id, answer.text)
    unknown = revoke(chain, chain.hub.token, MAX_INTEGER)
    assert (unknown.status_code, unknown.json()["detail"]["rule"]) == (
        404,
        "capture_grant.unknown",
    )


# --- the operator's command -------------------------------------------------------------------


@pytest.mark.slow
def test_the_command_grants_lists_and_revokes_for_the_grantor_only(
    chain: Chain, third_party: Party
) -> None:
    """``medtrace participant grant``: the same rules as the API, refusals named with exit
    code 1, and the audit says the grant came from the command line."""
    server, hub = chain.server, chain.hub.gln
    added = run_cli(
        server, "participant", "grant", "add", "--gln", hub, "--grantee", third_party.gln,
        "--ends-at", (dt.date.today() + dt.timedelta(days=2)).isoformat(),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    (created,) = [g for g in _grants(chain, third_party.token) if g["granted_by"] == f"cli:{hub}"]
    third_party.api.capture([third_party.station_at(hub).receive(GTIN, shipped_to_hub(chain))])

    by_grantee = run_cli(
        server, "participant", "grant", "revoke", str(created["id"]), "--gln", third_party.gln
    )
    assert by_grantee.returncode == 1
    assert "capture_grant.not_yours" in by_grantee.stderr
    listing = run_cli(server, "participant", "grant", "list", "--gln", third_party.gln)
    assert listing.returncode == 0 and str(created["id"]) in listing.stdout, listing.stderr

    revoked = run_cli(server, "participant", "grant", "revoke", str(created["id"]), "--gln", hub)
    assert revoked.returncode == 0, revoked.stderr
    receipt = third_party.station_at(hub).receive(GTIN, shipped_to_hub(chain))
    assert refused_nothing_written(chain, third_party, receipt) == "custody.wrong_location"
