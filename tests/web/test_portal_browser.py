"""The professionals' pages in a real headless Chromium: a regulator logs in with a password
and recalls a lot through the form, and the verify page of a unit of that lot turns
``recalled``; a form without its CSRF token is refused; one pharmacy never sees another's
stock or alerts; the pages in Simplified Chinese. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from sqlmodel import Session

from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Role
from medtrace.protocol.identifiers import digital_link_path
from medtrace.services.alerts import check_expiry
from medtrace.services.portal_accounts import add_user
from medtrace.services.registry import create_participant
from support.chain import EXPIRY, LOT, Chain, new_serial

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 360, "height": 740}
DESK = {"width": 1100, "height": 800}
REGULATOR_GLN = with_check_digit("952999900001")
INSPECTOR = ("inspector@smpa.example.cn", "correct horse battery staple")
OTHER_PHARMACY = ("pharmacist@huashan.example.cn", "another long passphrase")


@pytest.fixture(scope="module")
def accounts(chain: Chain) -> None:
    """A regulator and a second hospital pharmacy, each with a portal account."""
    with Session(chain.server.engine) as session:
        create_participant(
            session=session,
            gln=REGULATOR_GLN,
            name="Shanghai Medical Products Administration",
            role=Role.REGULATOR,
            city="Shanghai",
        )
    with Session(chain.server.engine) as session:
        create_participant(
            session=session,
            gln=with_check_digit("952567800009"),
            name="Huashan Hospital Pharmacy",
            role=Role.PHARMACY,
            city="Shanghai",
        )
    for gln, (email, password) in (
        (REGULATOR_GLN, INSPECTOR),
        (with_check_digit("952567800009"), OTHER_PHARMACY),
    ):
        with Session(chain.server.engine) as session:
            add_user(session=session, gln=gln, email=email, password=password)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESK)
    try:
        yield ctx
    finally:
        ctx.close()


def _log_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(url + "/portal")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#password-login button[type=submit]")
    page.wait_for_selector("nav.portal")


def _lot_with_units(chain: Chain, count: int) -> tuple[str, list[str]]:
    lot, serials = f"B{new_serial()[:8]}", [new_serial() for _ in range(count)]
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, s, lot=lot, expiry=EXPIRY) for s in serials])
    return lot, serials


def test_a_regulator_recalls_a_lot_through_the_form_and_the_verify_page_turns_recalled(
    context: BrowserContext, chain: Chain, accounts: None, artifacts: Path
) -> None:
    lot, serials = _lot_with_units(chain, 3)
    maker = chain.maker
    maker.api.capture([maker.station.ship(GTIN, serials[0], to=chain.hub.gln)])
    verify_url = chain.server.url + digital_link_path(GTIN, serials[1], lot=lot)
    page = context.new_page()
    page.goto(verify_url)
    before = page.get_attribute("#verdict", "data-verdict")

    page.goto(chain.server.url + "/portal/login")
    page.screenshot(path=artifacts / "portal-login.png", full_page=True)
    _log_in(page, chain.server.url, *INSPECTOR)
    page.click("nav.portal >> text=Recall a lot")
    page.fill("#gtin", GTIN)
    page.fill("#lot", lot)
    page.fill("#reason", "Sterility failure in the retained samples")
    page.screenshot(path=artifacts / "portal-recall-form.png", full_page=True)
    page.click("#recall-form button[type=submit]")
    page.wait_for_selector("#reach-units")
    page.screenshot(path=artifacts / "portal-recall-reach.png", full_page=True)
    reach = page.inner_text("main")
    page.goto(verify_url)
    page.screenshot(path=artifacts / "verify-after-portal-recall.png", full_page=True)

    assert before == "genuine"
    assert "Sterility failure" in reach and all(s in reach for s in serials)
    assert chain.hub.gln in reach, "the unit on its way to the hub is in the reach"
    assert page.get_attribute("#verdict", "data-verdict") == "recalled"
    assert "Sterility failure" in page.inner_text("#verdict")


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    context: BrowserContext, chain: Chain, accounts: None, artifacts: Path
) -> None:
    lot, serials = _lot_with_units(chain, 1)
    page = context.new_page()
    _log_in(page, chain.server.url, *INSPECTOR)
    page.goto(chain.server.url + "/portal/recall")
    page.fill("#gtin", GTIN)
    page.fill("#lot", lot)
    page.fill("#reason", "forged")
    page.evaluate("document.querySelector('#recall-form input[name=csrf]').remove()")

    page.click("#recall-form button[type=submit]")
    page.wait_for_selector("#refusal")
    page.screenshot(path=artifacts / "portal-csrf-refused.png", full_page=True)
    refusal = page.inner_text("#refusal")
    page.goto(chain.server.url + digital_link_path(GTIN, serials[0], lot=lot))

    assert "reload the page and send the form again" in refusal
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"


def test_one_pharmacy_never_sees_anothers_stock_or_alerts(
    context: BrowserContext, chain: Chain, accounts: None, artifacts: Path
) -> None:
    chain.to_pharmacy(new_serial())
    with Session(chain.server.engine) as session:
        check_expiry(session=session, today=EXPIRY, warn_days=0)
    page = context.new_page()

    _log_in(page, chain.server.url, *OTHER_PHARMACY)
    stock = page.inner_text("main")
    page.screenshot(path=artifacts / "portal-other-pharmacy-stock.png", full_page=True)
    page.click("nav.portal >> text=Alerts")
    alerts = page.inner_text("main")
    page.screenshot(path=artifacts / "portal-other-pharmacy-alerts.png", full_page=True)
    page.goto(chain.server.url + f"/portal/lots/{GTIN}/{LOT}/events.csv")
    export = page.inner_text("main")
    page.goto(chain.server.url + f"/portal?gtin={GTIN}&lot={LOT}")
    lot_page = page.inner_text("main")

    assert "Huashan Hospital Pharmacy" in stock and "No units in stock." in stock
    assert LOT not in stock and chain.pharmacy.gln not in stock
    assert "No alerts." in alerts and chain.pharmacy.gln not in alerts
    assert "not for your organisation's role" in export
    assert chain.pharmacy.participant.name not in lot_page


def test_a_pharmacist_verifies_a_pack_before_dispensing(
    browser: Browser, chain: Chain, artifacts: Path
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(chain.server.url + "/portal/login")
        page.click("text=Log in with your organisation's API token instead")
        page.fill("#token", chain.pharmacy.token)
        page.click("#token-login button[type=submit]")
        page.fill("#code", f"https://id.example/01/{GTIN}/10/{LOT}/21/{serial}")
        page.click('form[action="/portal/check"] button')
        page.wait_for_selector("#check")
        page.screenshot(path=artifacts / "portal-verify-before-dispense-360.png", full_page=True)
        ok = page.locator("#check .verdict")
        ok_colour = ok.evaluate("e => getComputedStyle(e).backgroundColor")
        signal = ok.get_attribute("data-signal")
        page.fill("#code", f"https://id.example/01/{GTIN}/21/NEVERMADE1")
        page.click('form[action="/portal/check"] button')
        page.wait_for_selector("#check")
        unknown = page.locator("#check .verdict")
        unknown_signal = unknown.get_attribute("data-signal")
        unknown_colour = unknown.evaluate("e => getComputedStyle(e).backgroundColor")
        width = page.evaluate("document.documentElement.scrollWidth")
    finally:
        context.close()

    assert signal == "OK" and ok_colour == "rgb(26, 127, 55)"
    assert unknown_signal == "UNKNOWN" and unknown_colour == "rgb(87, 96, 106)"
    assert width <= PHONE["width"]


def test_the_portal_speaks_chinese(
    browser: Browser, chain: Chain, accounts: None, artifacts: Path
) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(chain.server.url + "/portal/login")
        login = page.inner_text("main")
        page.screenshot(path=artifacts / "portal-login-zh-360.png", full_page=True)
        _log_in(page, chain.server.url, *INSPECTOR)
        page.click("nav.portal >> text=召回批次")
        recall = page.inner_text("main")
        page.screenshot(path=artifacts / "portal-recall-zh-360.png", full_page=True)
        page.click("nav.portal >> text=警报")
        alerts = page.inner_text("main")
        page.screenshot(path=artifacts / "portal-alerts-zh-360.png", full_page=True)
        lang = page.get_attribute("html", "lang")
    finally:
        context.close()

    assert "电子邮件地址" in login and "密码" in login
    assert "召回此批次" in recall
    assert "严重程度" in alerts
    assert lang == "zh-Hans"
