"""The verify page in a real headless Chromium, against a real ``medtrace serve``.

The in-browser proof must pass on an honest page and fail, in red and saying what failed, on
every named corruption a test fixture serves in its place (Playwright intercepts the page
and rewrites it before the browser sees it, as a lying server or a man in the middle would).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, BrowserContext, Page, Route
from sqlmodel import Session

from medtrace.contracts.findings import Finding
from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.envelope import sign_event
from medtrace.identifiers import digital_link_path
from medtrace.models.alerts import AlertKind, Severity
from medtrace.services.alerts import record_findings
from support.chain import LOT, Chain, new_serial

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 360, "height": 740}
DONE = '#proof:not([data-proof-status="nojs"]):not([data-proof-status="checking"])'
PROOF_DATA = re.compile(r'(<script type="application/json" id="proof-data">)(.*?)(</script>)', re.S)
Rewrite = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def dispensed(chain: Chain) -> str:
    """The verify URL of a pack that went the whole way and was dispensed (6 events)."""
    serial = new_serial()
    chain.to_pharmacy(serial)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, serial)])
    chain.server.wait_for_checkpoint(chain.server.snapshot()[0])
    return chain.server.url + digital_link_path(GTIN, serial, lot=LOT)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh phone-sized browser context (no cookies carried between tests)."""
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=1)
    try:
        yield ctx
    finally:
        ctx.close()


def _open(page: Page, url: str) -> str:
    """Load the page, wait for the in-browser check to finish, return its status."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector(DONE, timeout=15_000)
    assert not errors, errors
    status = page.get_attribute("#proof", "data-proof-status")
    assert status is not None
    return status


def _serve_rewritten(page: Page, url: str, rewrite: Callable[[str], str]) -> None:
    """Serve the real page at ``url`` with ``rewrite`` applied to its HTML."""

    def handle(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=rewrite(response.text()))

    page.route(url, handle)


def _rewrite_data(change: Rewrite) -> Callable[[str], str]:
    """An HTML rewrite that changes the proof data embedded in the page."""

    def rewrite(page_html: str) -> str:
        match = PROOF_DATA.search(page_html)
        assert match is not None
        data = json.loads(match.group(2))
        change(data)
        dumped = json.dumps(data).replace("<", "\\u003c").replace("&", "\\u0026")
        return page_html[: match.start(2)] + dumped + page_html[match.end(2) :]

    return rewrite


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def _tamper_proof(data: dict[str, Any]) -> None:
    data["events"][2]["inclusion_proof"][0] = _flip_hex(data["events"][2]["inclusion_proof"][0])


def _tamper_leaf_time(data: dict[str, Any]) -> None:
    """Change the signed time inside a leaf (and the readable copy): the signature breaks."""
    event = data["events"][1]
    leaf = base64.b64decode(event["leaf"]).decode()
    new_time = "2020-01-01T00:00:00.000Z"
    leaf = leaf.replace(event["event_time"], new_time)
    event["leaf"] = base64.b64encode(leaf.encode()).decode()
    event["event_time"] = new_time


def _tamper_checkpoint_root(data: dict[str, Any]) -> None:
    lines = data["checkpoint"].split("\n")
    lines[2] = base64.b64encode(hashlib.sha256(b"another tree").digest()).decode()
    data["checkpoint"] = "\n".join(lines)


def _swap_leaves(data: dict[str, Any]) -> None:
    """Serve another step's (validly signed, included) leaf in place of the first."""
    first, second = data["events"][0], data["events"][1]
    first["leaf"], first["inclusion_proof"] = second["leaf"], second["inclusion_proof"]


def _hide_timeline_step(page_html: str) -> str:
    """The page's timeline drops a step that the data still carries."""
    return re.sub(r"<li data-leaf-index=.*?</li>", "", page_html, count=1, flags=re.S)


def _shift_shown_time(page_html: str) -> str:
    """The page shows another time for a step than the one signed."""
    return re.sub(r'data-time="[^"]*"', 'data-time="2020-01-01T00:00:00.000Z"', page_html, count=1)


def test_an_honest_page_passes_the_in_browser_proof(
    context: BrowserContext, dispensed: str, artifacts: Path
) -> None:
    page = context.new_page()

    status = _open(page, dispensed)

    page.screenshot(path=artifacts / "verify-en-360.png", full_page=True)
    assert status == "passed", page.inner_text("#proof")
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"
    assert "already dispensed" in page.inner_text("#verdict")
    head = page.inner_text("#proof-head")
    size = int((page.text_content("#checkpoint") or "").splitlines()[1])
    assert f"Checked in your browser: 6 events, log size {size}" in head
    assert "No witness has cosigned" in page.inner_text("#proof-details")
    assert page.locator("#timeline li.checked").count() == 6
    assert page.locator("#timeline li.failed").count() == 0
    assert page.inner_text("#timeline li >> nth=0").startswith("Made")
    assert "No temperature data" in page.inner_text("main")
    assert "proof-failed" not in (page.get_attribute("body", "class") or "")
    # Phone first: nothing wider than the 360 px screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize(
    ("rewrite", "what_failed"),
    [
        pytest.param(_rewrite_data(_tamper_proof), "Step 3: its inclusion proof", id="proof"),
        pytest.param(_rewrite_data(_tamper_leaf_time), "signature of station", id="signed-time"),
        pytest.param(
            _rewrite_data(_tamper_checkpoint_root), "checkpoint's signature", id="checkpoint"
        ),
        pytest.param(_rewrite_data(_swap_leaves), "Step 1: the page shows", id="swapped-leaf"),
        pytest.param(_hide_timeline_step, "The page shows 5 steps but 6", id="hidden-step"),
        pytest.param(_shift_shown_time, "Step 1: the page shows event_time", id="shown-time"),
    ],
)
def test_a_tampered_page_turns_red_and_says_what_failed(
    context: BrowserContext,
    dispensed: str,
    artifacts: Path,
    rewrite: Callable[[str], str],
    what_failed: str,
    request: pytest.FixtureRequest,
) -> None:
    page = context.new_page()
    _serve_rewritten(page, dispensed, rewrite)

    status = _open(page, dispensed)

    page.screenshot(path=artifacts / f"verify-tampered-{request.node.callspec.id}.png")
    assert status == "failed"
    assert "proof-failed" in (page.get_attribute("body", "class") or "")
    assert page.is_visible("#proof-banner")
    assert "FAILED" in page.inner_text("#proof-head")
    assert what_failed in page.inner_text("#proof-details")


@pytest.fixture(scope="module")
def quarantined(chain: Chain) -> str:
    """The verify URL of a pack at the pharmacy that a cold-chain alert quarantined."""
    serial = new_serial()
    chain.to_pharmacy(serial)
    breach = Finding(
        kind=AlertKind.COLD_CHAIN,
        severity=Severity.CRITICAL,
        rule="cold_chain.excursion",
        dedup_key=f"cold_chain.excursion:test:{serial}",
        message="75 min outside 2–8 °C: quarantined until QA releases it",
        gln=chain.pharmacy.gln,
        gtin=GTIN,
        lot=LOT,
        unit_count=1,
        quarantine_units=((GTIN, serial),),
    )
    with Session(chain.server.engine) as session:
        record_findings(session=session, findings=[breach])
    chain.server.wait_for_checkpoint(chain.server.snapshot()[0])
    return chain.server.url + digital_link_path(GTIN, serial, lot=LOT)


def _tamper_alert_rule(data: dict[str, Any]) -> None:
    data["quarantine"]["rule"] = "cold_chain.freeze"


def _tamper_alert_proof(data: dict[str, Any]) -> None:
    proof = data["quarantine"]["inclusion_proof"]
    proof[0] = _flip_hex(proof[0])


def test_the_alert_that_quarantined_a_pack_is_checked_in_the_browser(
    context: BrowserContext, quarantined: str, artifacts: Path
) -> None:
    page = context.new_page()
    status = _open(page, quarantined)
    page.screenshot(path=artifacts / "verify-quarantined-360.png", full_page=True)
    assert status == "passed", page.inner_text("#proof")
    assert page.get_attribute("#verdict", "data-verdict") == "quarantined"
    assert "cold_chain.excursion" in page.inner_text("#verdict")
    assert "The alert that quarantined this pack is in the log too (leaf " in page.inner_text(
        "#proof-details"
    )
    for tamper, what_failed in (
        (_tamper_alert_rule, "does not check: the leaf records another rule"),
        (_tamper_alert_proof, "does not check: its inclusion proof"),
    ):
        tampered = context.new_page()
        _serve_rewritten(tampered, quarantined, _rewrite_data(tamper))
        assert _open(tampered, quarantined) == "failed"
        assert what_failed in tampered.inner_text("#proof-details")


def test_the_chinese_page_by_accept_language_and_by_the_switch(
    browser: Browser, dispensed: str, artifacts: Path
) -> None:
    chinese = browser.new_context(viewport=PHONE, locale="zh-CN")
    english = browser.new_context(viewport=PHONE, locale="en-US")
    try:
        page = chinese.new_page()
        status = _open(page, dispensed)
        page.screenshot(path=artifacts / "verify-zh-360.png", full_page=True)

        assert status == "passed"
        assert page.get_attribute("html", "lang") == "zh-Hans"
        assert "正品，在有效期内" in page.inner_text("#verdict")
        assert "已在您的浏览器中校验：6 个事件" in page.inner_text("#proof-head")
        assert page.inner_text("#timeline li >> nth=0").startswith("生产")

        switched = english.new_page()
        _open(switched, dispensed)
        assert "Genuine and in date" in switched.inner_text("#verdict")
        switched.click("text=简体中文")
        switched.wait_for_selector(DONE)
        assert "正品" in switched.inner_text("#verdict")
        # The switch is remembered: the bare address now comes back in Chinese.
        assert _open(switched, dispensed) == "passed"
        assert "已发药" in switched.inner_text("#verdict")
    finally:
        chinese.close()
        english.close()


def test_without_javascript_the_verdict_still_shows(browser: Browser, dispensed: str) -> None:
    ctx = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto(dispensed)
        assert page.get_attribute("#verdict", "data-verdict") == "genuine"
        assert page.get_attribute("#proof", "data-proof-status") == "nojs"
        assert "JavaScript is off" in page.inner_text("#proof")
        assert page.locator("#timeline li").count() == 6
    finally:
        ctx.close()


def test_on_a_plain_http_lan_address_the_page_says_it_cannot_check(
    context: BrowserContext, dispensed: str, insecure_host: str
) -> None:
    page = context.new_page()

    status = _open(page, dispensed.replace("127.0.0.1", insecure_host))

    assert status == "unavailable"
    assert "not opened over a secure connection" in page.inner_text("#proof-head")
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"


def _cosign(note: str, key: Ed25519PrivateKey, name: str, *, corrupt: bool = False) -> str:
    """Add a c2sp.org/tlog-cosignature line (Ed25519, type 0x04) by ``name`` to ``note``."""
    text = note[: note.rfind("\n\n") + 1]
    raw = key.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + raw).digest()[:4]
    stamp = int(time.time())
    message = f"cosignature/v1\ntime {stamp}\n{text}".encode()
    signature = key.sign(message if not corrupt else message + b"!")
    blob = base64.b64encode(key_id + stamp.to_bytes(8, "big") + signature).decode()
    return f"{note}\u2014 {name} {blob}\n"


def _with_witness(key: Ed25519PrivateKey, name: str, *, corrupt: bool) -> Callable[[str], str]:
    """Publish a witness key on the page and add its cosignature to the checkpoint."""
    raw = key.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + raw).digest()[:4]
    encoded = base64.b64encode(b"\x04" + raw).decode()
    vkey = f"{name}+{key_id.hex()}+{encoded}"

    def cosign(data: dict[str, Any]) -> None:
        data["checkpoint"] = _cosign(data["checkpoint"], key, name, corrupt=corrupt)

    def rewrite(page_html: str) -> str:
        listed = f'<ul id="witness-keys"><li><code>{html.escape(vkey)}</code></li></ul>'
        page_html = page_html.replace("<details><summary>", listed + "<details><summary>", 1)
        return _rewrite_data(cosign)(page_html)

    return rewrite


@pytest.mark.parametrize("corrupt", [False, True], ids=["cosigned", "bad-cosignature"])
def test_witness_cosignatures_are_checked_when_present(
    context: BrowserContext, dispensed: str, corrupt: bool
) -> None:
    page = context.new_page()
    witness = _with_witness(Ed25519PrivateKey.generate(), "witness.test/w1", corrupt=corrupt)
    _serve_rewritten(page, dispensed, witness)

    status = _open(page, dispensed)

    if corrupt:
        assert status == "failed"
        assert "witness witness.test/w1 does not verify" in page.inner_text("#proof-details")
    else:
        assert status == "passed", page.inner_text("#proof")
        assert "Witnessed by witness.test/w1." in page.inner_text("#proof-details")


def _signed(member: Enrolled, kind: str, **fields: Any) -> dict[str, Any]:
    """An event of any type (pack, a pallet's ship ...) signed by ``member``'s station."""
    station = member.station
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


def test_a_pack_moved_on_a_pallet_is_proven_through_its_pack_events(
    context: BrowserContext, chain: Chain
) -> None:
    serial = new_serial()
    case, pallet = (with_check_digit(f"39521234{secrets.randbelow(10**9):09d}") for _ in "cp")
    chain.commission(serial)
    maker, hub = chain.maker, chain.hub
    maker.api.capture(
        [
            _signed(maker, "pack", sscc=case, children=[{"gtin": GTIN, "serial": serial}]),
            _signed(maker, "pack", sscc=pallet, children=[{"sscc": case}]),
            _signed(maker, "ship", sscc=pallet, destination_gln=hub.gln),
        ]
    )
    hub.api.capture([_signed(hub, "receive", sscc=pallet)])
    chain.server.wait_for_checkpoint(chain.server.snapshot()[0])
    page = context.new_page()

    status = _open(page, chain.server.url + digital_link_path(GTIN, serial, lot=LOT))

    assert status == "passed", page.inner_text("#proof")
    assert page.locator("#timeline li.checked").count() == 5
    assert page.inner_text("#timeline li >> nth=1").startswith("Packed")


def test_a_pharmacist_logs_in_through_the_form_and_sees_the_stock(
    context: BrowserContext, chain: Chain, artifacts: Path
) -> None:
    chain.to_pharmacy(new_serial())
    page = context.new_page()

    page.goto(chain.server.url + "/portal")
    page.fill("#token", chain.pharmacy.token)
    page.click("button[type=submit]")
    page.wait_for_selector("#stock")

    page.screenshot(path=artifacts / "portal-stock-360.png", full_page=True)
    assert page.url == chain.server.url + "/portal"
    assert chain.pharmacy.participant.name in page.inner_text("main")
    assert LOT in page.inner_text("#stock")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("text=Log out")
    page.wait_for_selector("#token")
