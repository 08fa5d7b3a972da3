"""The /cn/{code} verify page in a real headless Chromium: the same in-browser proof check as
the Digital Link page, for a pack keyed by China's drug traceability code."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Route

from medtrace.demo import GTIN
from support.browser import PHONE, open_verify_page
from support.chain import Chain

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROOF_DATA = re.compile(r'(<script type="application/json" id="proof-data">)(.*?)(</script>)', re.S)


@pytest.fixture(scope="module")
def cn_url(chain: Chain) -> str:
    """The /cn URL of a pack keyed by its China code, dispensed at the pharmacy (6 events)."""
    drug = f"8{secrets.randbelow(10**6):06d}"
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    code = f"{drug}{secrets.randbelow(10**9):09d}{secrets.randbelow(10**4):04d}"
    chain.to_pharmacy(code)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, code)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    return f"{chain.server.url}/cn/{code}"


def test_the_cn_page_passes_the_in_browser_proof_and_names_the_agency(
    context: BrowserContext, cn_url: str, artifacts: Path
) -> None:
    page = context.new_page()

    status = open_verify_page(page, cn_url)

    page.screenshot(path=artifacts / "verify-cn-en-360.png", full_page=True)
    assert status == "passed", page.inner_text("#proof")
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"
    assert page.locator("#timeline li.checked").count() == 6
    assert "only the issuing agency can verify" in page.inner_text("#cn-check-note")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_chinese_cn_page_passes_too(browser: Browser, cn_url: str, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = context.new_page()
        status = open_verify_page(page, cn_url)
        page.screenshot(path=artifacts / "verify-cn-zh-360.png", full_page=True)
        assert status == "passed", page.inner_text("#proof")
        assert "只有发码机构能够验证" in page.inner_text("#cn-check-note")
    finally:
        context.close()


def test_a_page_about_another_pack_fails_in_the_browser(
    context: BrowserContext, cn_url: str
) -> None:
    page = context.new_page()

    def other_serial(route: Route) -> None:
        response = route.fetch()
        text = response.text()
        match = PROOF_DATA.search(text)
        assert match is not None
        data = json.loads(match.group(2))
        data["unit"]["serial"] = data["unit"]["serial"][:-1] + "0"
        if data["unit"]["serial"] == cn_url.rsplit("/", 1)[1]:
            data["unit"]["serial"] = data["unit"]["serial"][:-1] + "1"
        text = text[: match.start(2)] + json.dumps(data) + text[match.end(2) :]
        route.fulfill(response=response, body=text)

    page.route(cn_url, other_serial)

    assert open_verify_page(page, cn_url) == "failed"
    assert "about another pack" in page.inner_text("#proof")
