"""A case's or pallet's page (``/00/{sscc}``) in a real headless Chromium, against a real
``medtrace serve``: the same in-browser proof as a pack's page turns green on an honest page
and red, saying what failed, on a tampered one."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from medtrace.demo import GTIN
from support.browser import PHONE, open_verify_page, rewrite_data, serve_rewritten
from support.chain import Chain, new_serial, new_sscc, signed

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass(frozen=True)
class Nested:
    """A pallet holding a layer of cases ``a`` and another, two packs each; shipped to the
    distributor and received there."""

    url: str
    pallet: str
    layer: str
    a: str


@pytest.fixture(scope="module")
def nested(chain: Chain) -> Nested:
    serials = [new_serial() for _ in range(4)]
    chain.commission(*serials)
    a, b, layer, pallet = (new_sscc() for _ in range(4))
    maker, hub = chain.maker, chain.hub
    packs = [{"gtin": GTIN, "serial": s} for s in serials]
    maker.api.capture(
        [
            signed(maker, "pack", sscc=a, children=packs[:2]),
            signed(maker, "pack", sscc=b, children=packs[2:]),
            signed(maker, "pack", sscc=layer, children=[{"sscc": a}, {"sscc": b}]),
            signed(maker, "pack", sscc=pallet, children=[{"sscc": layer}]),
            signed(maker, "ship", sscc=pallet, destination_gln=hub.gln),
        ]
    )
    hub.api.capture([signed(hub, "receive", sscc=pallet)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    return Nested(chain.server.url, pallet, layer, a)


def test_a_pallets_page_passes_the_in_browser_proof(
    context: BrowserContext, nested: Nested, artifacts: Path
) -> None:
    page = context.new_page()

    status = open_verify_page(page, f"{nested.url}/00/{nested.pallet}")

    page.screenshot(path=artifacts / "container-en-360.png", full_page=True)
    assert status == "passed", page.inner_text("#proof")
    assert page.get_attribute("#verdict", "data-verdict") == "genuine"
    assert page.locator("#timeline li.checked").count() == 3  # pack, ship, receive
    assert "4 units inside" in page.inner_text("#contents-total")
    assert page.locator("#contents-containers li").count() == 3  # layer, then a and b
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_case_inside_a_pallet_is_proven_through_the_pack_events_around_it(
    context: BrowserContext, nested: Nested
) -> None:
    page = context.new_page()

    status = open_verify_page(page, f"{nested.url}/00/{nested.a}")

    assert status == "passed", page.inner_text("#proof")
    steps = page.locator("#timeline li")
    assert steps.count() == 5  # pack a, pack layer, pack pallet, ship, receive
    assert page.locator("#timeline li.checked").count() == 5
    page.click(f'a[href="/00/{nested.layer}"]')
    page.wait_for_url(f"**/00/{nested.layer}")
    assert page.get_attribute("#container", "data-sscc") == nested.layer


def _flip_first_proof_hash(data: dict[str, Any]) -> None:
    proof = data["events"][1]["inclusion_proof"]
    proof[0] = ("1" if proof[0][0] == "0" else "0") + proof[0][1:]


def _another_containers_leaf(data: dict[str, Any]) -> None:
    """Claim the page is about another SSCC: every step is then about another container."""
    data["container"]["sscc"] = new_sscc()


def _tamper_signed_time(data: dict[str, Any]) -> None:
    event = data["events"][0]
    leaf = (
        base64.b64decode(event["leaf"])
        .decode()
        .replace(event["event_time"], "2020-01-01T00:00:00.000Z")
    )
    event["leaf"] = base64.b64encode(leaf.encode()).decode()
    event["event_time"] = "2020-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("change", "what_failed"),
    [
        pytest.param(_flip_first_proof_hash, "Step 2: its inclusion proof", id="proof"),
        pytest.param(_tamper_signed_time, "signature of station", id="signed-time"),
        pytest.param(_another_containers_leaf, "about another pack", id="other-sscc"),
    ],
)
def test_a_tampered_container_page_turns_red_and_says_what_failed(
    context: BrowserContext,
    nested: Nested,
    change: Callable[[dict[str, Any]], None],
    what_failed: str,
) -> None:
    page = context.new_page()
    url = f"{nested.url}/00/{nested.pallet}"
    serve_rewritten(page, url, rewrite_data(change))

    status = open_verify_page(page, url)

    assert status == "failed"
    assert "proof-failed" in (page.get_attribute("body", "class") or "")
    assert page.is_visible("#proof-banner")
    assert what_failed in page.inner_text("#proof-details")
