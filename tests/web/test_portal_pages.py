"""The professionals' pages through a real server: log-in, CSRF, cookies, own data only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlmodel import Session

from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Role
from medtrace.services.registry import create_participant
from support.chain import LOT, Chain, new_serial


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


@contextmanager
def _logged_in(chain: Chain, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chain.server.url) as client:
        form = client.get("/portal/login")
        answer = client.post("/portal/login", data={"csrf": _csrf(form), "token": token})
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture(scope="module")
def regulator_token(chain: Chain) -> str:
    with Session(chain.server.engine) as session:
        new = create_participant(
            session=session,
            gln=with_check_digit("952999900001"),
            name="Shanghai Medical Products Administration",
            role=Role.REGULATOR,
            city="Shanghai",
        )
        session.commit()
    return new.token


@pytest.fixture
def pharmacy(chain: Chain) -> Iterator[httpx.Client]:
    with _logged_in(chain, chain.pharmacy.token) as client:
        yield client


def test_log_in_needs_the_csrf_token_and_a_real_api_token(chain: Chain) -> None:
    with httpx.Client(base_url=chain.server.url) as client:
        form = client.get("/portal/login")
        forged = client.post("/portal/login", data={"csrf": "x", "token": chain.pharmacy.token})
        wrong = client.post("/portal/login", data={"csrf": _csrf(form), "token": "mt_nope"})
        right = client.post(
            "/portal/login", data={"csrf": _csrf(form), "token": chain.pharmacy.token}
        )

    assert "portal_csrf=" in form.headers["set-cookie"]
    assert forged.status_code == 403 and "portal_session" not in forged.headers.get(
        "set-cookie", ""
    )
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/portal"
    cookie = right.headers["set-cookie"]
    assert "portal_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/portal" in cookie


def test_without_a_session_the_portal_asks_to_log_in(chain: Chain) -> None:
    page = httpx.get(chain.server.url + "/portal")
    csv = httpx.get(chain.server.url + "/portal/stock.csv")

    assert page.status_code == 303 and page.headers["location"] == "/portal/login"
    assert csv.status_code == 401


def test_each_participant_sees_its_own_stock_and_its_csv(
    chain: Chain, pharmacy: httpx.Client
) -> None:
    serials = [new_serial() for _ in range(3)]
    chain.to_pharmacy(*serials)
    before = pharmacy.get("/portal")
    held = int(re.findall(r"<td>(\d+)</td></tr>", before.text)[-1])
    chain.to_pharmacy(new_serial())

    page = pharmacy.get("/portal")
    csv = pharmacy.get("/portal/stock.csv")
    with _logged_in(chain, chain.hub.token) as hub:
        hub_page = hub.get("/portal")

    assert page.status_code == 200
    assert chain.pharmacy.participant.name in page.text
    assert f"<td>{GTIN}</td><td>{LOT}</td>" in page.text
    assert int(re.findall(r"<td>(\d+)</td></tr>", page.text)[-1]) == held + 1
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "gtin,lot,expiry,count,status"
    assert f"{GTIN},{LOT}," in csv.text
    assert chain.pharmacy.participant.name not in hub_page.text
    assert "No units in stock." in hub_page.text, "the hub shipped everything on"


def test_a_regulator_investigates_a_lot_and_others_cannot(
    chain: Chain, pharmacy: httpx.Client, regulator_token: str
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)

    with _logged_in(chain, regulator_token) as regulator:
        lot_page = regulator.get("/portal", params={"gtin": GTIN, "lot": LOT})
        bad = regulator.get("/portal", params={"gtin": "123", "lot": LOT})
    not_for_pharmacy = pharmacy.get("/portal", params={"gtin": GTIN, "lot": LOT})

    assert lot_page.status_code == 200
    assert serial in lot_page.text
    assert "Ruijin Hospital Pharmacy" in lot_page.text
    assert 'id="lot-units"' in lot_page.text
    assert 'class="error"' in bad.text
    assert 'id="lot-units"' not in not_for_pharmacy.text


def test_log_out_is_a_csrf_checked_post(chain: Chain) -> None:
    with _logged_in(chain, chain.pharmacy.token) as client:
        page = client.get("/portal")
        forged = client.post("/portal/logout", data={"csrf": "x"})
        still = client.get("/portal")
        out = client.post("/portal/logout", data={"csrf": _csrf(page)})
        client.cookies.delete("portal_session")
        after = client.get("/portal")

    assert forged.status_code == 403 and still.status_code == 200
    assert out.status_code == 303
    assert (
        'portal_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    )
    assert after.status_code == 303


def test_verify_before_dispense_opens_the_scanned_packs_page(
    chain: Chain, pharmacy: httpx.Client
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    scanned = f"]d201{GTIN}10{LOT}\x1d21{serial}"

    found = pharmacy.get("/portal/check", params={"code": scanned})
    by_link = pharmacy.get(
        "/portal/check", params={"code": f"https://id.example/01/{GTIN}/21/{serial}"}
    )
    no_serial = pharmacy.get("/portal/check", params={"code": f"]d201{GTIN}10{LOT}"})

    assert found.status_code == 303
    assert found.headers["location"] == f"/01/{GTIN}/10/{LOT}/21/{serial}"
    assert by_link.headers["location"] == f"/01/{GTIN}/21/{serial}"
    assert no_serial.status_code == 422
    assert 'class="error"' in no_serial.text and 'id="stock"' in no_serial.text
