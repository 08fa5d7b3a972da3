"""Portal log-in under attack, through a real server on both databases (issue 18 item 3):
failed log-ins are throttled per account and per client network with 429 and Retry-After,
and a refused log-in starts no session and changes nothing. This module's server believes
X-Forwarded-For from 127.0.0.1, so each test can stand for clients of its own networks."""

from __future__ import annotations

import itertools
import re

import httpx
import pytest
from sqlmodel import Session, select

from medtrace.models.portal import PortalUser
from medtrace.services.portal_accounts import add_user
from support.chain import Chain

PASSWORD = "correct horse battery staple"
_networks = itertools.count(1)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {
        "MEDTRACE_LOGIN_MAX_FAILURES": "2",
        "MEDTRACE_LOGIN_MAX_NETWORK_FAILURES": "3",
        "MEDTRACE_LOGIN_FAILURE_WINDOW": "600",
        "MEDTRACE_TRUSTED_PROXIES": '["127.0.0.1"]',
    }


@pytest.fixture(scope="module")
def account(chain: Chain) -> str:
    with Session(chain.server.engine) as session:
        add_user(session=session, gln=chain.hub.gln, email="dock@hub.example.cn", password=PASSWORD)
    return "dock@hub.example.cn"


def client_from(chain: Chain, network: int) -> httpx.Client:
    """A client whose requests come (through the trusted proxy) from 10.<network>.0.0/24."""
    return httpx.Client(base_url=chain.server.url, headers={"X-Forwarded-For": f"10.{network}.0.9"})


def post_login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    form = client.get("/portal/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    return client.post(
        "/portal/login", data={"csrf": csrf.group(1), "email": email, "password": password}
    )


def password_hash(chain: Chain, email: str) -> str:
    with Session(chain.server.engine) as session:
        return session.exec(select(PortalUser.password_hash).where(PortalUser.email == email)).one()


def test_an_account_guessed_at_is_throttled_with_retry_after(chain: Chain, account: str) -> None:
    before = password_hash(chain, account)
    with client_from(chain, next(_networks)) as first, client_from(chain, next(_networks)) as other:
        guesses = [post_login(first, account, f"guess {n}").status_code for n in range(2)]
        refused = post_login(other, account, PASSWORD)
        home = other.get("/portal", follow_redirects=False)

    assert guesses == [401, 401]
    assert refused.status_code == 429, refused.text
    assert 590 <= int(refused.headers["Retry-After"]) <= 600
    assert "portal.throttled" in refused.text and "Try again in" in refused.text
    assert home.status_code == 303 and home.headers["location"] == "/portal/login", "no session"
    assert password_hash(chain, account) == before


def test_a_network_guessing_many_accounts_is_throttled_and_others_are_not(
    chain: Chain, account: str
) -> None:
    network = next(_networks)
    with client_from(chain, network) as attacker:
        guesses = [
            post_login(attacker, f"guess{n}@hub.example.cn", "a password").status_code
            for n in range(3)
        ]
        refused = post_login(attacker, "someone@hub.example.cn", "a password")
    with client_from(chain, next(_networks)) as elsewhere:
        unknown = post_login(elsewhere, "someone@hub.example.cn", "a password")

    assert guesses == [401, 401, 401]
    assert refused.status_code == 429 and "portal.throttled" in refused.text
    assert unknown.status_code == 401, "another network is not throttled"
