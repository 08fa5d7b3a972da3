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
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, BrowserContext
from sqlalchemy import and_, update
from sqlmodel import Session

from medtrace.contracts.findings import Finding
from medtrace.demo import GTIN, with_check_digit
from medtrace.models.alerts import AlertKind, Severity
from medtrace.models.iot import Reading
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import format_time, reading_topic, sign_reading
from medtrace.services.alerts import record_findings
from support.browser import (
    DONE,
    PHONE,
    Rewrite,
    open_verify_page,
    rewrite_data,
    serve_rewritten,
)
from support.chain import EXPIRY, LOT, Chain, new_serial, signed
from support.fhir import dispense_of
from support.iot import registered_long_ago
from support.lots import pdf, record
from support.lots import post as post_lot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def dispensed(chain: Chain) -> str:
    """The verify URL of a pack that went the whole way and was dispensed (6 events)."""
    serial = new_serial()
    chain.to_pharmacy(serial)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, serial)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    return chain.server.url + digital_link_path(GTIN, serial, lot=LOT)


DOCUMENTED_LOT = "LOTDOCS"
LOT_FILES = {
    "inspection-LOTDOCS.pdf": pdf("Inspection report, lot LOTDOCS: conforms"),
    "coa-LOTDOCS.pdf": pdf("Certificate of analysis, lot LOTDOCS"),
}
AMENDMENT = {"amendment-LOTDOCS.pdf": pdf("Amendment: retest of lot LOTDOCS conforms")}


@pytest.fixture(scope="module")
def documented(chain: Chain) -> str:
    """The verify URL of a pack whose lot has a record in two versions, three PDFs in all."""
    maker = chain.maker
    first = record(maker.station, DOCUMENTED_LOT, 1, LOT_FILES)
    amended = record(
        maker.station,
        DOCUMENTED_LOT,
        2,
        AMENDMENT,
        kind="amendment",
        event_time="2026-11-23T09:00:00Z",
    )
    for envelope, files in ((first, LOT_FILES), (amended, AMENDMENT)):
        created = post_lot(chain.server.url, maker.token, envelope, files)
        assert created.status_code == 201, created.text
    serial = new_serial()
    maker.api.capture([maker.station.commission(GTIN, serial, lot=DOCUMENTED_LOT, expiry=EXPIRY)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    return chain.server.url + digital_link_path(GTIN, serial, lot=DOCUMENTED_LOT)


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

    status = open_verify_page(page, dispensed)

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
        pytest.param(rewrite_data(_tamper_proof), "Step 3: its inclusion proof", id="proof"),
        pytest.param(rewrite_data(_tamper_leaf_time), "signature of station", id="signed-time"),
        pytest.param(
            rewrite_data(_tamper_checkpoint_root), "checkpoint's signature", id="checkpoint"
        ),
        pytest.param(rewrite_data(_swap_leaves), "Step 1: the page shows", id="swapped-leaf"),
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
    serve_rewritten(page, dispensed, rewrite)

    status = open_verify_page(page, dispensed)

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
    chain.server.wait_for_checkpoint(chain.server.leaves())
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
    status = open_verify_page(page, quarantined)
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
        serve_rewritten(tampered, quarantined, rewrite_data(tamper))
        assert open_verify_page(tampered, quarantined) == "failed"
        assert what_failed in tampered.inner_text("#proof-details")


def test_the_chinese_page_by_accept_language_and_by_the_switch(
    browser: Browser, dispensed: str, artifacts: Path
) -> None:
    chinese = browser.new_context(viewport=PHONE, locale="zh-CN")
    english = browser.new_context(viewport=PHONE, locale="en-US")
    try:
        page = chinese.new_page()
        status = open_verify_page(page, dispensed)
        page.screenshot(path=artifacts / "verify-zh-360.png", full_page=True)

        assert status == "passed"
        assert page.get_attribute("html", "lang") == "zh-Hans"
        assert "正品，在有效期内" in page.inner_text("#verdict")
        assert "已在您的浏览器中校验：6 个事件" in page.inner_text("#proof-head")
        assert page.inner_text("#timeline li >> nth=0").startswith("生产")

        switched = english.new_page()
        open_verify_page(switched, dispensed)
        assert "Genuine and in date" in switched.inner_text("#verdict")
        switched.click("text=简体中文")
        switched.wait_for_selector(DONE)
        assert "正品" in switched.inner_text("#verdict")
        # The switch is remembered: the bare address now comes back in Chinese.
        assert open_verify_page(switched, dispensed) == "passed"
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

    status = open_verify_page(page, dispensed.replace("127.0.0.1", insecure_host))

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
        return rewrite_data(cosign)(page_html)

    return rewrite


@pytest.mark.parametrize("corrupt", [False, True], ids=["cosigned", "bad-cosignature"])
def test_witness_cosignatures_are_checked_when_present(
    context: BrowserContext, dispensed: str, corrupt: bool
) -> None:
    page = context.new_page()
    witness = _with_witness(Ed25519PrivateKey.generate(), "witness.test/w1", corrupt=corrupt)
    serve_rewritten(page, dispensed, witness)

    status = open_verify_page(page, dispensed)

    if corrupt:
        assert status == "failed"
        assert "witness witness.test/w1 does not verify" in page.inner_text("#proof-details")
    else:
        assert status == "passed", page.inner_text("#proof")
        assert "Witnessed by witness.test/w1." in page.inner_text("#proof-details")


def test_a_pack_moved_on_a_pallet_is_proven_through_its_pack_events(
    context: BrowserContext, chain: Chain
) -> None:
    serial = new_serial()
    case, pallet = (with_check_digit(f"39521234{secrets.randbelow(10**9):09d}") for _ in "cp")
    chain.commission(serial)
    maker, hub = chain.maker, chain.hub
    maker.api.capture(
        [
            signed(maker, "pack", sscc=case, children=[{"gtin": GTIN, "serial": serial}]),
            signed(maker, "pack", sscc=pallet, children=[{"sscc": case}]),
            signed(maker, "ship", sscc=pallet, destination_gln=hub.gln),
        ]
    )
    hub.api.capture([signed(hub, "receive", sscc=pallet)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    page = context.new_page()

    status = open_verify_page(page, chain.server.url + digital_link_path(GTIN, serial, lot=LOT))

    assert status == "passed", page.inner_text("#proof")
    assert page.locator("#timeline li.checked").count() == 5
    assert page.inner_text("#timeline li >> nth=1").startswith("Packed")


def test_a_pharmacist_logs_in_through_the_form_and_sees_the_stock(
    context: BrowserContext, chain: Chain, artifacts: Path
) -> None:
    chain.to_pharmacy(new_serial())
    page = context.new_page()

    page.goto(chain.server.url + "/portal")
    page.click("text=Log in with your organisation's API token instead")
    page.fill("#token", chain.pharmacy.token)
    page.click("#token-login button[type=submit]")
    page.wait_for_selector("#stock")

    page.screenshot(path=artifacts / "portal-stock-360.png", full_page=True)
    assert page.url == chain.server.url + "/portal"
    assert chain.pharmacy.participant.name in page.inner_text("main")
    assert LOT in page.inner_text("#stock")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("text=Log out")
    page.wait_for_selector("#email")


def test_the_lot_documents_are_listed_and_hashed_in_the_browser(
    context: BrowserContext, documented: str, artifacts: Path
) -> None:
    page = context.new_page()
    downloads: list[str] = []
    page.on("request", lambda r: downloads.append(r.url) if "/documents/" in r.url else None)

    status = open_verify_page(page, documented)

    page.screenshot(path=artifacts / "verify-lot-documents-en-360.png", full_page=True)
    assert status == "passed", page.inner_text("#proof")
    records = page.locator("#lot-records > li")
    assert records.count() == 2
    assert records.nth(0).inner_text().startswith("Lot record, version 1")
    documents = page.locator("#lot-records li[data-sha256]")
    assert [documents.nth(i).get_attribute("data-name") for i in range(3)] == [
        *LOT_FILES,
        *AMENDMENT,
    ]
    assert page.locator("#lot-records li[data-sha256].checked").count() == 3
    assert page.locator("#lot-records > li.checked").count() == 2
    assert "Inspection report: inspection-LOTDOCS.pdf" in documents.nth(0).inner_text()
    assert "matches the signed record" in documents.nth(0).inner_text()
    assert len(downloads) == 3, "every document was downloaded and hashed"
    details = page.inner_text("#proof-details")
    assert (
        "Lot record versions checked: 2. Documents that match what the manufacturer signed: 3."
        in details
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_swapped_document_turns_the_page_red_and_names_it(
    context: BrowserContext, documented: str, artifacts: Path
) -> None:
    page = context.new_page()
    sha = hashlib.sha256(LOT_FILES["coa-LOTDOCS.pdf"]).hexdigest()
    forged = pdf("Certificate of analysis, lot LOTDOCS: FORGED")
    page.route(
        documented.split("/01/")[0] + f"/api/v1/documents/{sha}",
        lambda route: route.fulfill(body=forged, content_type="application/pdf"),
    )

    status = open_verify_page(page, documented)

    page.screenshot(path=artifacts / "verify-swapped-document.png", full_page=True)
    assert status == "failed"
    assert page.is_visible("#proof-banner")
    assert (
        "The document coa-LOTDOCS.pdf downloaded from this service does not match the hash "
        "the manufacturer signed." in page.inner_text("#proof-details")
    )
    swapped = page.locator(f'#lot-records li[data-sha256="{sha}"]')
    assert "failed" in (swapped.get_attribute("class") or "")
    assert page.locator("#lot-records li[data-sha256].checked").count() == 2


def test_the_chinese_page_shows_the_lot_documents(browser: Browser, documented: str) -> None:
    chinese = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = chinese.new_page()

        status = open_verify_page(page, documented)

        assert status == "passed", page.inner_text("#proof")
        assert "批次文件" in page.inner_text("main")
        assert page.inner_text("#lot-records > li >> nth=0").startswith("批次记录，第 1 版")
        assert "检验报告" in page.inner_text("#lot-records")
        assert "已核对的批次记录版本：2 个。与生产企业签名一致的文件：3 份。" in page.inner_text(
            "#proof-details"
        )
    finally:
        chinese.close()


def test_without_javascript_the_lot_documents_still_show(browser: Browser, documented: str) -> None:
    ctx = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto(documented)
        assert page.get_attribute("#verdict", "data-verdict") == "genuine"
        assert page.locator("#lot-records li[data-sha256]").count() == 3
        sha = hashlib.sha256(LOT_FILES["inspection-LOTDOCS.pdf"]).hexdigest()
        link = page.get_attribute("#lot-records a >> nth=0", "href")
        assert link == f"/api/v1/documents/{sha}"
    finally:
        ctx.close()


def test_a_dispense_posted_by_a_hospital_system_is_proven_without_a_signature(
    context: BrowserContext, chain: Chain, artifacts: Path
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    posted = httpx.post(
        f"{chain.server.url}/fhir/MedicationDispense",
        json=dispense_of(serial),
        headers={"Authorization": f"Bearer {chain.pharmacy.token}"},
    )
    assert posted.status_code == 201, posted.text
    chain.server.wait_for_checkpoint(chain.server.leaves())
    page = context.new_page()

    status = open_verify_page(page, chain.server.url + digital_link_path(GTIN, serial, lot=LOT))

    page.screenshot(path=artifacts / "verify-fhir-dispense.png", full_page=True)
    assert status == "passed", page.inner_text("#proof")
    assert page.locator("#timeline li.checked").count() == 6
    last = page.inner_text("#timeline li >> nth=5")
    assert last.startswith("Dispensed") and "recorded on an API token" in last
    assert f"recorded on the API token of {chain.pharmacy.gln}" in last
    assert (
        "Steps recorded on a participant's API token (EPCIS or FHIR), not signed by a station: 1."
        in page.inner_text("#proof")
    )


def _tamper_lot_proof(data: dict[str, Any]) -> None:
    proof = data["lot_records"][0]["inclusion_proof"]
    proof[0] = _flip_hex(proof[0])


def _tamper_lot_quantity(data: dict[str, Any]) -> None:
    """Change a signed field of the lot record's leaf: the station's signature breaks."""
    record = data["lot_records"][0]
    leaf = base64.b64decode(record["leaf"]).decode().replace('"quantity":10000', '"quantity":9')
    record["leaf"] = base64.b64encode(leaf.encode()).decode()


@pytest.mark.parametrize(
    ("change", "what_failed"),
    [
        (_tamper_lot_proof, "Lot record version 1: its inclusion proof"),
        (_tamper_lot_quantity, "Lot record version 1: the signature of station"),
    ],
    ids=["lot-proof", "lot-signature"],
)
def test_a_tampered_lot_record_turns_the_page_red(
    context: BrowserContext, documented: str, change: Rewrite, what_failed: str
) -> None:
    page = context.new_page()
    serve_rewritten(page, documented, rewrite_data(change))

    status = open_verify_page(page, documented)

    assert status == "failed"
    assert what_failed in page.inner_text("#proof-details")
    assert "failed" in (page.get_attribute("#lot-records > li >> nth=0", "class") or "")


@pytest.fixture(scope="module")
def chilled(chain: Chain) -> tuple[str, str]:
    """The verify URL of a pack kept at the hub while a fridge there read 5, 6.5 and 4 °C, and
    that fridge's sensor id."""
    serial, maker, hub = new_serial(), chain.maker, chain.hub
    now = dt.datetime.now(dt.UTC)

    def stamp(minutes: int) -> str:
        return (now - dt.timedelta(minutes=minutes)).isoformat(timespec="milliseconds")

    maker.api.capture(
        [
            maker.station.commission(GTIN, serial, lot=LOT, expiry=EXPIRY, event_time=stamp(50)),
            maker.station.ship(GTIN, serial, to=hub.gln, event_time=stamp(45)),
        ]
    )
    hub.api.capture([hub.station.receive(GTIN, serial, event_time=stamp(40))])
    sensor_id, key = f"fridge-{secrets.token_hex(4)}", Ed25519PrivateKey.generate()
    auth = {"Authorization": f"Bearer {hub.token}"}
    url = chain.server.url
    created = httpx.post(
        f"{url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(key))},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    registered_long_ago(chain.server, sensor_id)  # a binding may not start before it
    bound = httpx.post(
        f"{url}/api/v1/sensors/{sensor_id}/bindings",
        json={"kind": "place", "target": hub.gln, "valid_from": stamp(45)},
        headers=auth,
    )
    assert bound.status_code == 201, bound.text
    messages = []
    for seq, (minutes, celsius) in enumerate(((30, 5.0), (20, 6.5), (10, 4.0)), start=1):
        reading = {
            "sensor_id": sensor_id,
            "seq": seq,
            "time": format_time(now - dt.timedelta(minutes=minutes)),
            "temperature_c": celsius,
        }
        payload = sign_reading(reading, key).decode()
        messages.append({"topic": reading_topic(sensor_id), "payload": payload})
    relayed = httpx.post(f"{url}/api/v1/readings", json=messages, headers=auth)
    assert relayed.json()["accepted"] == 3, relayed.text
    chain.server.wait_for_checkpoint(chain.server.leaves())
    return url + digital_link_path(GTIN, serial, lot=LOT), sensor_id


def test_a_reading_changed_in_the_store_turns_the_chart_red(
    context: BrowserContext, chain: Chain, chilled: tuple[str, str], artifacts: Path
) -> None:
    verify_url, sensor_id = chilled
    page = context.new_page()
    assert open_verify_page(page, verify_url) == "passed", page.inner_text("#proof")
    assert page.locator("#temperature circle[data-leaf-index]").count() == 3
    assert "checked against what their sensors signed: 3" in page.inner_text("#proof-details")

    readings = Reading.__table__  # type: ignore[attr-defined]
    second = and_(readings.c.sensor_id == sensor_id, readings.c.seq == 2)
    with chain.server.engine.begin() as conn:  # an intruder hides an excursion... or invents one
        conn.execute(update(readings).where(second).values(temperature_c=12.0))
    try:
        tampered = context.new_page()
        status = open_verify_page(tampered, verify_url)
        tampered.screenshot(path=artifacts / "verify-tampered-reading-360.png", full_page=True)
        details = tampered.inner_text("#proof-details")
    finally:
        with chain.server.engine.begin() as conn:
            conn.execute(update(readings).where(second).values(temperature_c=6.5))
    assert status == "failed", details
    assert "proof-failed" in (tampered.get_attribute("body", "class") or "")
    assert (
        f"Temperature reading 2 (sensor {sensor_id}, #2): the chart shows 12.0 °C but the "
        "sensor signed 6.5 °C." in details
    )
    assert tampered.locator("#temperature circle.failed").count() == 1
