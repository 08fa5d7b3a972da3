"""Opening the verify page as a phone does, and waiting for its in-browser proof check."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, Route

PHONE = {"width": 360, "height": 740}
"""A small phone's viewport: the verify page must read well at 360 px."""
DONE = '#proof:not([data-proof-status="nojs"]):not([data-proof-status="checking"])'
"""The proof box once the browser's check has finished, whatever its outcome."""


def open_verify_page(page: Page, url: str) -> str:
    """Load the page, wait for the in-browser check to finish, return its status (``passed``,
    ``failed``, ``pending``, ...); a script error fails the test."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector(DONE, timeout=15_000)
    assert not errors, errors
    status = page.get_attribute("#proof", "data-proof-status")
    assert status is not None
    return status


PROOF_DATA = re.compile(r'(<script type="application/json" id="proof-data">)(.*?)(</script>)', re.S)
Rewrite = Callable[[dict[str, Any]], None]


def serve_rewritten(page: Page, url: str, rewrite: Callable[[str], str]) -> None:
    """Serve the real page at ``url`` with ``rewrite`` applied to its HTML (as a lying
    server or a man in the middle would)."""

    def handle(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=rewrite(response.text()))

    page.route(url, handle)


def rewrite_data(change: Rewrite) -> Callable[[str], str]:
    """An HTML rewrite that changes the proof data embedded in the page."""

    def rewrite(page_html: str) -> str:
        match = PROOF_DATA.search(page_html)
        assert match is not None
        data = json.loads(match.group(2))
        change(data)
        dumped = json.dumps(data).replace("<", "\\u003c").replace("&", "\\u0026")
        return page_html[: match.start(2)] + dumped + page_html[match.end(2) :]

    return rewrite
