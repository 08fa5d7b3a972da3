"""A real headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.

Playwright never downloads a browser here: it launches the system one by its path. Tests that
need it are skipped, loudly, when the binary is missing (``scripts/bootstrap.sh`` installs it).
Screenshots go to ``test-artifacts/`` at the repository root (git-ignored), to be looked at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from support.browser import PHONE

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
INSECURE_HOST = "lan.medtrace.test"
"""A name mapped to 127.0.0.1 by the browser only: plain HTTP to it is not a secure context,
as a phone on the LAN would see the service."""

ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh phone-sized browser context (no cookies carried between tests)."""
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=1)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def insecure_host() -> str:
    """A host name that reaches the test server over plain HTTP outside a secure context."""
    return INSECURE_HOST
