"""Forwarded client addresses through a real server: believed only from configured proxies.

Issue 18 item 15: uvicorn believed ``X-Forwarded-For`` from 127.0.0.1 by default, so twelve
requests naming made-up addresses flagged a dispensed pack "verified from 10 places". This
module's server trusts no proxy (the default) and watches public verifications with low
thresholds; tests/trace/api/test_suspects_api.py runs one that trusts 127.0.0.1.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from medtrace.config import HttpSettings
from medtrace.demo import GTIN
from medtrace.models.suspects import PublicVerificationCount
from medtrace.protocol.identifiers import digital_link_path
from support.chain import Chain, new_serial


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Suspect after 4 verifications from 3 places within an hour; no trusted proxy."""
    return {
        "MEDTRACE_SUSPECT_VERIFY_REQUESTS": "4",
        "MEDTRACE_SUSPECT_VERIFY_PLACES": "3",
        "MEDTRACE_SUSPECT_VERIFY_WINDOW": "3600",
    }


def _places(chain: Chain, serial: str, total: int) -> Counter[str]:
    """The unit's counted public verifications per hashed place, once ``total`` are written
    (the counts are written in batches, twice a second)."""
    counts = PublicVerificationCount
    statement = select(counts.place_hash, counts.count).where(counts.serial == serial)
    deadline = time.monotonic() + 10
    while True:
        written: Counter[str] = Counter()
        with chain.server.engine.connect() as conn:
            for place, count in conn.execute(statement):
                written[place] += count
        if written.total() >= total or time.monotonic() > deadline:
            return written
        time.sleep(0.1)


def test_made_up_forwarded_addresses_are_one_place(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy = chain.pharmacy
    pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
    url = chain.server.url + digital_link_path(GTIN, serial)

    answers = [
        httpx.get(url, headers={"Accept": "application/json", "X-Forwarded-For": f"203.0.{n}.7"})
        for n in range(12)
    ]

    assert [a.json()["verdict"] for a in answers] == ["genuine"] * 12, answers[-1].json()
    places = _places(chain, serial, 12)
    assert places.total() == 12 and len(places) == 1, "all twelve came from one place"
    again = httpx.get(url, headers={"Accept": "application/json"}).json()
    assert again["verdict"] == "genuine", again["reasons"]


@pytest.mark.parametrize("bad", ["*", "proxy", "10.0.0.0/33"])
def test_a_trusted_proxy_must_be_an_address_or_a_network(bad: str) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        HttpSettings(trusted_proxies=[bad])


def test_trusted_proxies_take_addresses_and_networks() -> None:
    settings = HttpSettings(trusted_proxies=["172.30.0.2", "10.0.0.0/8", "::1"])
    assert settings.trusted_proxies == ["172.30.0.2", "10.0.0.0/8", "::1"]
