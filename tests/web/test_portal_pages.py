"""The professionals' pages through a real server: log-in (password or API token), the
signed session cookie, CSRF on every form, and each participant seeing only its own data."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.models import Role, utcnow
from medtrace.models.portal import PortalUser
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import format_time, reading_topic, sign_reading
from medtrace.services.alerts import check_expiry
from medtrace.services.portal_accounts import add_user, hash_password
from medtrace.services.registry import create_participant
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.iot import registered_long_ago
from support.portal import csrf_of, logged_in

MEDTRACE = Path(sys.executable).parent / "medtrace"
REGULATOR_EMAIL = "inspector@smpa.example.cn"
REGULATOR_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def regulator(chain: Chain) -> str:
    """A regulator with a portal account (its e-mail); its API token is never used here."""
    with Session(chain.server.engine) as session:
        create_participant(
            session=session,
            gln=with_check_digit("952999900001"),
            name="Shanghai Medical Products Administration",
            role=Role.REGULATOR,
            city="Shanghai",
        )
    with Session(chain.server.engine) as session:
        add_user(
            session=session,
            gln=with_check_digit("952999900001"),
            email=REGULATOR_EMAIL,
            password=REGULATOR_PASSWORD,
        )
    return REGULATOR_EMAIL


@pytest.fixture
def pharmacy(chain: Chain) -> Iterator[httpx.Client]:
    with logged_in(chain, token=chain.pharmacy.token) as client:
        yield client


@pytest.fixture
def inspector(chain: Chain, regulator: str) -> Iterator[httpx.Client]:
    with logged_in(chain, email=regulator, password=REGULATOR_PASSWORD) as client:
        yield client


def _medtrace(chain: Chain, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDTRACE_DATABASE_URL": chain.server.database_url}
    return subprocess.run(
        [str(MEDTRACE), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_an_account_made_with_the_cli_logs_in_with_its_password(chain: Chain) -> None:
    email = f"pharmacist-{new_serial().lower()}@ruijin.example.cn"
    add = ("portal", "user", "add", "--gln")
    made = _medtrace(chain, *add, chain.pharmacy.gln, "--email", email)
    again = _medtrace(chain, *add, chain.pharmacy.gln, "--email", email)
    nobody = _medtrace(chain, *add, "9529999999993", "--email", "a@b.cn")
    assert made.returncode == 0, made.stderr
    password = re.search(r"password: (\S+)", made.stdout)
    assert password is not None

    with httpx.Client(base_url=chain.server.url) as client:
        form = client.get("/portal/login")
        wrong = client.post(
            "/portal/login", data={"csrf": csrf_of(form), "email": email, "password": "nope"}
        )
        right = client.post(
            "/portal/login",
            data={"csrf": csrf_of(form), "email": email.upper(), "password": password.group(1)},
        )
        page = client.get("/portal")

    assert again.returncode == 1 and "portal.email_taken" in again.stderr
    assert nobody.returncode == 1 and "participant.unknown" in nobody.stderr
    assert wrong.status_code == 401 and "portal.bad_credentials" in wrong.text
    assert "medtrace portal user add" in wrong.text, "the refusal says what to do"
    assert right.status_code == 303 and right.headers["location"] == "/portal"
    cookie = right.headers["set-cookie"]
    assert "portal_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/portal" in cookie
    assert password.group(1) not in cookie and email not in cookie
    assert page.status_code == 200 and chain.pharmacy.participant.name in page.text
    assert email in page.text


def test_an_unknown_address_is_refused_like_a_wrong_password(chain: Chain, regulator: str) -> None:
    with httpx.Client(base_url=chain.server.url) as client:
        csrf = csrf_of(client.get("/portal/login"))
        unknown = client.post(
            "/portal/login", data={"csrf": csrf, "email": "who@x.cn", "password": "whatever"}
        )
        wrong = client.post(
            "/portal/login", data={"csrf": csrf, "email": regulator, "password": "whatever"}
        )

    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("who@x.cn", "") == wrong.text.replace(regulator, "")


def test_log_in_needs_the_csrf_token_and_a_real_api_token(chain: Chain) -> None:
    with httpx.Client(base_url=chain.server.url) as client:
        form = client.get("/portal/login")
        forged = client.post("/portal/login", data={"csrf": "x", "token": chain.pharmacy.token})
        missing = client.post("/portal/login", data={"token": chain.pharmacy.token})
        wrong = client.post("/portal/login", data={"csrf": csrf_of(form), "token": "mt_nope"})
        right = client.post(
            "/portal/login", data={"csrf": csrf_of(form), "token": chain.pharmacy.token}
        )
        after = client.get("/portal")

    assert "portal_session=" in form.headers["set-cookie"]
    for refused in (forged, missing):
        assert refused.status_code == 403
        assert "reload the page and send the form again" in refused.text
        assert "portal_session" not in refused.headers.get("set-cookie", "")
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert right.status_code == 303
    assert chain.pharmacy.token not in right.headers["set-cookie"]
    assert csrf_of(after) != csrf_of(form), "log-in starts a new session with a new token"


def test_a_tampered_or_foreign_session_cookie_is_no_session(
    chain: Chain, pharmacy: httpx.Client
) -> None:
    value = pharmacy.cookies["portal_session"]
    payload, mac = value.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]

    tampered = httpx.get(
        chain.server.url + "/portal", cookies={"portal_session": f"{flipped}.{mac}"}
    )
    garbage = httpx.get(chain.server.url + "/portal", cookies={"portal_session": "x.y.z"})

    assert pharmacy.get("/portal").status_code == 200
    assert tampered.status_code == 303 and tampered.headers["location"] == "/portal/login"
    assert garbage.status_code == 303


def test_without_a_session_the_portal_asks_to_log_in(chain: Chain) -> None:
    for path in ("/portal", "/portal/alerts", "/portal/reorder", "/portal/recall"):
        answer = httpx.get(chain.server.url + path)
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/login"
    assert httpx.get(chain.server.url + "/portal/stock.csv").status_code == 303


def test_each_participant_sees_its_own_stock_and_its_csv(
    chain: Chain, pharmacy: httpx.Client
) -> None:
    serials = [new_serial() for _ in range(3)]
    chain.to_pharmacy(*serials)
    before = pharmacy.get("/portal")
    held = int(re.findall(r"<td>(\d+)</td></tr>", before.text)[-1])
    chain.to_pharmacy(new_serial())

    page = pharmacy.get("/portal")
    csv_text = pharmacy.get("/portal/stock.csv")
    with logged_in(chain, token=chain.hub.token) as hub:
        hub_page = hub.get("/portal")

    assert page.status_code == 200
    assert f"<td>{GTIN}</td><td>{LOT}</td>" in page.text
    assert int(re.findall(r"<td>(\d+)</td></tr>", page.text)[-1]) == held + 1
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.splitlines()[0] == "gtin,lot,expiry,count,status"
    assert f"{GTIN},{LOT}," in csv_text.text
    assert chain.pharmacy.participant.name not in hub_page.text
    assert "No units in stock." in hub_page.text, "the hub shipped everything on"


def test_the_regulators_pages_are_refused_to_others(chain: Chain, pharmacy: httpx.Client) -> None:
    lot_page = pharmacy.get("/portal", params={"gtin": GTIN, "lot": LOT})
    recall = pharmacy.get("/portal/recall")
    export = pharmacy.get(f"/portal/lots/{GTIN}/{LOT}/events.jsonld")
    reach = pharmacy.get(f"/portal/lots/{GTIN}/{LOT}/reach")
    posted = pharmacy.post(
        "/portal/recall",
        data={"csrf": csrf_of(lot_page), "gtin": GTIN, "lot": LOT, "reason": "x"},
    )

    assert 'id="lot-units"' not in lot_page.text
    for refused in (recall, export, reach, posted):
        assert refused.status_code == 403
        assert "not for your organisation's role" in refused.text
    with logged_in(chain, token=chain.hub.token) as hub:
        assert hub.get("/portal/reorder").status_code == 403
        assert hub.get("/portal/labels.pdf", params={"gtin": GTIN, "lot": LOT}).status_code == 403


def test_alerts_are_each_participants_own(
    chain: Chain, pharmacy: httpx.Client, inspector: httpx.Client
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    with Session(chain.server.engine) as session:
        check_expiry(session=session, today=EXPIRY, warn_days=0)

    mine = pharmacy.get("/portal/alerts", params={"kind": "expiry"})
    with logged_in(chain, token=chain.hub.token) as hub:
        theirs = hub.get("/portal/alerts", params={"kind": "expiry"})
    everything = inspector.get("/portal/alerts", params={"kind": "expiry", "gtin": GTIN})
    bad = pharmacy.get("/portal/alerts", params={"kind": "weather"})

    assert mine.status_code == 200 and 'id="alerts"' in mine.text
    assert chain.pharmacy.gln in mine.text
    assert chain.pharmacy.gln not in theirs.text and 'id="alerts"' not in theirs.text
    assert chain.pharmacy.gln in everything.text, "the regulator sees every alert"
    assert bad.status_code == 422 and "alerts.kind" in bad.text


def _recall(client: httpx.Client, page: httpx.Response, lot: str, **extra: str) -> httpx.Response:
    return client.post(
        "/portal/recall",
        data={"csrf": csrf_of(page), "gtin": GTIN, "lot": lot, "reason": "sterility", **extra},
    )


def test_a_regulator_recalls_a_lot_through_the_form(chain: Chain, inspector: httpx.Client) -> None:
    lot, serials = f"R{new_serial()[:8]}", [new_serial() for _ in range(3)]
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, s, lot=lot, expiry=EXPIRY) for s in serials])
    maker.api.capture([maker.station.ship(GTIN, serials[0], to=chain.hub.gln)])
    form = inspector.get("/portal/recall")

    forged = inspector.post(
        "/portal/recall", data={"csrf": "forged", "gtin": GTIN, "lot": lot, "reason": "x"}
    )
    still_genuine = httpx.get(
        f"{chain.server.url}/01/{GTIN}/10/{lot}/21/{serials[1]}",
        headers={"Accept": "application/json"},
    )
    unknown = _recall(inspector, form, "NOSUCHLOT")
    done = _recall(inspector, form, lot)
    twice = _recall(inspector, form, lot)
    reach = inspector.get(done.headers["location"])
    verify = httpx.get(
        f"{chain.server.url}/01/{GTIN}/10/{lot}/21/{serials[1]}",
        headers={"Accept": "application/json"},
    )
    epcis = inspector.get(f"/portal/lots/{GTIN}/{lot}/events.jsonld")
    table = inspector.get(f"/portal/lots/{GTIN}/{lot}/events.csv")
    units = inspector.get(f"/portal/lots/{GTIN}/{lot}/reach.csv")
    hidden = httpx.get(f"{chain.server.url}/portal/lots/{GTIN}/{lot}/reach.csv")

    assert forged.status_code == 403 and still_genuine.json()["verdict"] == "genuine"
    assert unknown.status_code == 404 and "recall.unknown_lot" in unknown.text
    assert done.status_code == 303 and done.headers["location"].endswith(f"/{lot}/reach")
    assert twice.status_code == 409 and "recall.already_recalled" in twice.text
    assert reach.status_code == 200 and 'id="reach-units"' in reach.text
    assert all(s in reach.text for s in serials) and "sterility" in reach.text
    assert verify.json()["verdict"] == "recalled"
    document = epcis.json()
    assert epcis.headers["content-type"].startswith("application/ld+json")
    assert document["type"] == "EPCISDocument" and document["schemaVersion"] == "2.0"
    events = document["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in events] == [*["commissioning"] * 3, "shipping", "holding"]
    assert events[-1]["disposition"] == "recalled"
    assert sorted(e["epcList"][0].rsplit("/", 1)[1] for e in events[:3]) == sorted(serials)
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["event_id"] for r in rows] == [e["eventID"] for e in events]
    assert rows[3]["biz_step"] == "shipping" and serials[0] in rows[3]["epcs"]
    assert 'id="reach-csv"' in reach.text
    assert units.headers["content-disposition"].startswith("attachment; filename=")
    listed = list(csv.DictReader(io.StringIO(units.text)))
    assert [r["serial"] for r in listed] == sorted(serials)
    shipped = next(r for r in listed if r["serial"] == serials[0])
    assert (shipped["state"], shipped["destination_gln"]) == ("in_transit", chain.hub.gln)
    assert "serial" not in hidden.text, "no session: no reach"


def test_a_portal_recall_is_on_the_ledger_as_authenticated_by_the_session(
    chain: Chain, inspector: httpx.Client
) -> None:
    lot, serial = f"S{new_serial()[:8]}", new_serial()
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, serial, lot=lot, expiry=EXPIRY)])

    done = _recall(inspector, inspector.get("/portal/recall"), lot)
    reach = inspector.get(done.headers["location"])
    found = re.search(r"Ledger leaf (\d+)", reach.text)
    assert found is not None
    index = int(found.group(1))
    leaves = httpx.get(
        f"{chain.server.url}/api/v1/ledger/leaves", params={"start": index, "end": index + 1}
    )

    leaf = json.loads(base64.b64decode(leaves.json()[0]["data"]))
    assert leaf["portal"] == {"gtin": GTIN, "lot": lot, "reason": "sterility"}
    assert leaf["event"]["type"] == "recall" and leaf["event"]["lot"] == lot
    assert "signature" not in leaf and "station_id" not in leaf["event"]
    assert leaf["participant"] == with_check_digit("952999900001")


def test_a_lot_and_serials_of_set_82_are_recalled_reached_and_linked_from_every_page(
    chain: Chain, inspector: httpx.Client
) -> None:
    tag = new_serial()[:4]
    lot, serials = f"L/9%\"<&'?{tag}", [f"S/1{tag}", f"P%Q+{tag}", f"(a);{tag}"]
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, s, lot=lot, expiry=EXPIRY) for s in serials])

    done = _recall(inspector, inspector.get("/portal/recall"), lot)
    reach = inspector.get(done.headers["location"])
    investigation = inspector.get("/portal", params={"gtin": GTIN, "lot": lot})
    api_reach = maker.api.recall_reach(GTIN, lot)

    assert done.status_code == 303 and reach.status_code == 200, reach.text
    assert sorted(u["serial"] for u in api_reach["units"]) == sorted(serials)
    for page in (reach, investigation):
        links = re.findall(r'href="(/(?:01|portal/lots)/[^"]+)"', page.text)
        assert len(links) >= 3
        for link in links:
            answer = inspector.get(
                link.replace("&amp;", "&"), headers={"Accept": "application/json"}
            )
            assert answer.status_code == 200, (link, answer.text)
        verified = {link for link in links if link.startswith("/01/")}
        assert len(verified) == len(serials), links


def test_the_lot_investigation_counts_pages_and_links_the_exports(
    chain: Chain, inspector: httpx.Client
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)

    page = inspector.get("/portal", params={"gtin": GTIN, "lot": LOT})
    bad = inspector.get("/portal", params={"gtin": "123", "lot": LOT})

    assert page.status_code == 200 and serial in page.text
    assert 'id="lot-counts"' in page.text and 'id="lot-holders"' in page.text
    assert chain.pharmacy.participant.name in page.text
    assert f"/portal/lots/{GTIN}/{LOT}/events.jsonld" in page.text
    assert 'class="error"' in bad.text


def test_a_pharmacy_verifies_before_dispensing(chain: Chain, pharmacy: httpx.Client) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)

    found = pharmacy.get("/portal/check", params={"code": f"]d201{GTIN}10{LOT}\x1d21{serial}"})
    by_link = pharmacy.get(
        "/portal/check", params={"code": f"https://id.example/01/{GTIN}/21/{serial}"}
    )
    unknown = pharmacy.get("/portal/check", params={"code": f"]d201{GTIN}21NEVERMADE1"})
    no_serial = pharmacy.get("/portal/check", params={"code": f"]d201{GTIN}10{LOT}"})

    assert found.status_code == 200 and 'data-signal="OK"' in found.text
    assert f'href="/01/{GTIN}/10/{LOT}/21/{serial}"' in found.text
    assert "not in your stock" not in found.text
    assert 'data-signal="OK"' in by_link.text
    assert 'data-signal="UNKNOWN"' in unknown.text and "possible counterfeit" in unknown.text
    assert no_serial.status_code == 422 and "gs1.missing_serial" in no_serial.text


def test_a_pharmacy_reads_its_reorder_plan_and_its_csv(
    chain: Chain, pharmacy: httpx.Client
) -> None:
    serials = [new_serial() for _ in range(2)]
    chain.to_pharmacy(*serials)
    pharmacy_station = chain.pharmacy.station
    chain.pharmacy.api.capture([pharmacy_station.dispense(GTIN, serials[0])])

    page = pharmacy.get("/portal/reorder")
    table = pharmacy.get("/portal/reorder.csv")

    assert page.status_code == 200 and 'id="reorder"' in page.text and GTIN in page.text
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert table.headers["content-disposition"].startswith("attachment")
    assert [r["gtin"] for r in rows] == [GTIN] and rows[0]["gln"] == chain.pharmacy.gln
    assert int(rows[0]["on_hand"]) >= 1
    api = httpx.get(
        f"{chain.server.url}/api/v1/reorder-plans.csv",
        headers={"Authorization": f"Bearer {chain.pharmacy.token}"},
    )
    assert table.text == api.text, "the page reads the same service as the API"


def test_a_manufacturer_sees_its_shipments_and_downloads_a_label_sheet(chain: Chain) -> None:
    lot, serials = f"L{new_serial()[:8]}", [new_serial() for _ in range(3)]
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, s, lot=lot, expiry=EXPIRY) for s in serials])
    maker.api.capture([maker.station.ship(GTIN, serials[0], to=chain.hub.gln)])

    with logged_in(chain, token=maker.token) as client:
        shipments = client.get("/portal/shipments")
        sheet = client.get("/portal/labels.pdf", params={"gtin": GTIN, "lot": lot})
        nothing = client.get("/portal/labels.pdf", params={"gtin": GTIN, "lot": "NOSUCH"})
        form = client.get("/portal/labels")
    with logged_in(chain, token=chain.hub.token) as hub:
        hub_shipments = hub.get("/portal/shipments")

    assert shipments.status_code == 200 and 'id="shipments"' in shipments.text
    assert f"{GTIN} {lot}" in shipments.text and chain.hub.participant.name in shipments.text
    assert f"{GTIN} {lot}" not in hub_shipments.text
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "application/pdf"
    assert sheet.content.startswith(b"%PDF")
    assert nothing.status_code == 404 and "labels.nothing_to_print" in nothing.text
    assert "medtrace labels units" in form.text


def _signed(member: Enrolled, kind: str, when: dt.datetime, **fields: Any) -> dict[str, Any]:
    station = member.station
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": format_time(when),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


def test_a_shipment_in_transit_shows_what_its_sensor_measured_since_it_left(
    chain: Chain,
) -> None:
    maker, serials = chain.maker, [new_serial() for _ in range(2)]
    case = with_check_digit(f"39521234{secrets.randbelow(10**9):09d}")
    left = utcnow() - dt.timedelta(minutes=30)
    station = maker.station
    children = [{"gtin": GTIN, "serial": s} for s in serials]
    maker.api.capture(
        [
            *(
                station.commission(GTIN, s, lot=LOT, expiry=EXPIRY, event_time=format_time(left))
                for s in serials
            ),
            _signed(maker, "pack", left, sscc=case, children=children),
            _signed(maker, "ship", left, sscc=case, destination_gln=chain.hub.gln),
        ]
    )
    sensor_id, key = f"truck-{secrets.token_hex(4)}", Ed25519PrivateKey.generate()
    headers = {"Authorization": f"Bearer {maker.token}"}
    url = chain.server.url
    httpx.post(
        f"{url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(key))},
        headers=headers,
    ).raise_for_status()
    registered_long_ago(chain.server, sensor_id)
    httpx.post(
        f"{url}/api/v1/sensors/{sensor_id}/bindings",
        json={"kind": "shipment", "target": case, "valid_from": left.isoformat()},
        headers=headers,
    ).raise_for_status()
    readings = [(left + dt.timedelta(minutes=m), c) for m, c in ((5, 5.0), (10, 9.5), (15, 6.25))]
    messages = [
        {
            "topic": reading_topic(sensor_id),
            "payload": sign_reading(
                {"sensor_id": sensor_id, "seq": seq, "time": format_time(t), "temperature_c": c},
                key,
            ).decode(),
        }
        for seq, (t, c) in enumerate(readings)
    ]
    relayed = httpx.post(f"{url}/api/v1/readings", json=messages, headers=headers)
    assert relayed.json()["accepted"] == 3, relayed.text

    with logged_in(chain, token=maker.token) as client:
        page = client.get("/portal/shipments")

    row = next(r for r in page.text.split("<tr") if case in r)
    assert chain.hub.participant.name in row and ">2<" in row
    assert f'<a href="/00/{case}">{case}</a>' in row  # the case's own page
    assert "6.2 °C" in row and "3 readings, 1 outside 2.0–8.0 °C" in row
    assert 'class="out"' in row


def test_log_out_is_a_csrf_checked_post(chain: Chain) -> None:
    with logged_in(chain, token=chain.pharmacy.token) as client:
        page = client.get("/portal")
        forged = client.post("/portal/logout", data={"csrf": "x"})
        still = client.get("/portal")
        out = client.post("/portal/logout", data={"csrf": csrf_of(page)})
        after = client.get("/portal")

    assert forged.status_code == 403 and still.status_code == 200
    assert out.status_code == 303
    assert (
        "Max-Age=0" in out.headers["set-cookie"] or 'portal_session=""' in out.headers["set-cookie"]
    )
    assert after.status_code == 303


def test_a_new_password_or_a_disabled_account_ends_its_sessions(chain: Chain) -> None:
    email, password = f"night-{new_serial().lower()}@ruijin.example.cn", "a long enough passphrase"
    with Session(chain.server.engine) as session:
        user_id = add_user(
            session=session, gln=chain.pharmacy.gln, email=email, password=password
        ).user.id

    def change(**values: object) -> None:
        with Session(chain.server.engine) as session, session.begin():
            user = session.get(PortalUser, user_id)
            assert user is not None
            for name, value in values.items():
                setattr(user, name, value)

    with logged_in(chain, email=email, password=password) as client:
        before = client.get("/portal")
        change(password_hash=hash_password("another long passphrase"))
        after_new_password = client.get("/portal")
    change(password_hash=hash_password(password))
    with logged_in(chain, email=email, password=password) as client:
        change(active=False)
        after_disabled = client.get("/portal")
        form = client.get("/portal/login")
        again = client.post(
            "/portal/login", data={"csrf": csrf_of(form), "email": email, "password": password}
        )

    assert before.status_code == 200
    assert after_new_password.status_code == 303, "the old password's session ended"
    assert after_disabled.status_code == 303
    assert again.status_code == 401 and "portal.bad_credentials" in again.text
