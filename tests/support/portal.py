"""The portal as a browser without JavaScript uses it: log in through the form, keep the
session cookie, send the CSRF token back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from .chain import Chain


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


@contextmanager
def logged_in(chain: Chain, **credentials: str) -> Iterator[httpx.Client]:
    """A client logged in with ``token=`` or ``email=`` and ``password=``."""
    with httpx.Client(base_url=chain.server.url) as client:
        form = client.get("/portal/login")
        answer = client.post("/portal/login", data={"csrf": csrf_of(form), **credentials})
        assert answer.status_code == 303, answer.text
        yield client
