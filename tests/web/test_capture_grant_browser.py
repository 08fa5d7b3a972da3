"""A step captured under a capture grant is proven in the phone's browser like any other: the
station's leaf names who captured (``captured_by``) beside the signed event, and the
in-browser check reads that leaf (a real headless Chromium against ``medtrace serve``)."""

from __future__ import annotations

import datetime as dt
import secrets

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import BrowserContext

from medtrace.demo import GTIN
from medtrace.models import Role
from medtrace.protocol.identifiers import digital_link_path
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.station import Station
from support.browser import open_verify_page
from support.chain import LOT, Chain, new_serial
from support.iot import new_participant

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_receipt_by_the_distributors_3pl_is_checked_in_the_browser(
    context: BrowserContext, chain: Chain
) -> None:
    gln, token = new_participant(chain.server, Role.DISTRIBUTOR)
    granted = httpx.post(
        f"{chain.server.url}/api/v1/capture-grants",
        json={
            "grantee": gln,
            "gln": chain.hub.gln,
            "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
        },
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert granted.status_code == 201, granted.text
    serial = new_serial()
    chain.commission(serial)
    chain.maker.api.capture([chain.maker.station.ship(GTIN, serial, to=chain.hub.gln)])
    station = Station(f"3pl-{secrets.token_hex(4)}", chain.hub.gln, Ed25519PrivateKey.generate())
    with CaptureClient(chain.server.url, token) as third_party:
        third_party.register_station(station.station_id, station.public_key)
        third_party.capture([station.receive(GTIN, serial)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    page = context.new_page()

    status = open_verify_page(page, chain.server.url + digital_link_path(GTIN, serial, lot=LOT))

    assert status == "passed", page.inner_text("#proof")
    assert page.locator("#timeline li.checked").count() == 3
