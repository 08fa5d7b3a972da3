"""Opening the verify page as a phone does, and waiting for its in-browser proof check."""

from __future__ import annotations

from playwright.sync_api import Page

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
