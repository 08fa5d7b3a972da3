"""The brute-force guard of portal log-ins (issue 18 item 3), through the service on both
databases: failures counted per account and per client network, shared through the database,
refused before any hashing, and an unknown address costing what a known one costs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from medtrace.db import create_db_engine, upgrade_schema
from medtrace.demo import with_check_digit
from medtrace.errors import Throttled, Unauthenticated
from medtrace.models import Role
from medtrace.models.portal import LoginFailure, PortalUser
from medtrace.services import portal_accounts
from medtrace.services.portal_accounts import LoginThrottle, add_user, log_in
from medtrace.services.registry import create_participant

EMAIL, PASSWORD = "pharmacist@ruijin.example.cn", "correct horse battery staple"
HOME, AWAY = "198.51.100.0/24", "203.0.113.0/24"
THROTTLE = LoginThrottle(
    max_account_failures=3, max_network_failures=5, window=dt.timedelta(seconds=60)
)
T0 = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """scrypt at a test cost (2^10: the tests hash often), each call counted."""
    calls: list[int] = []
    real = portal_accounts._scrypt

    def counted(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        calls.append(log2_n)
        return real(password, salt, log2_n, r, p)

    monkeypatch.setattr(portal_accounts, "_LOG2_N", 10)
    monkeypatch.setattr(portal_accounts, "_scrypt", counted)
    portal_accounts.unknown_account_hash.cache_clear()
    portal_accounts.unknown_account_hash()
    yield calls
    portal_accounts.unknown_account_hash.cache_clear()


@pytest.fixture
def engine(fresh_database_url: str, hashes: list[int]) -> Iterator[Engine]:
    """A database with one pharmacy and its portal account."""
    engine = create_db_engine(fresh_database_url)
    upgrade_schema(engine)
    gln = with_check_digit("690000000001")
    with Session(engine) as session:
        create_participant(session=session, gln=gln, name="Ruijin", role=Role.PHARMACY)
    with Session(engine) as session:
        add_user(session=session, gln=gln, email=EMAIL, password=PASSWORD)
    hashes.clear()
    yield engine
    engine.dispose()


def attempt(
    engine: Engine, email: str, password: str, *, network: str = HOME, at: dt.datetime = T0
) -> portal_accounts.PortalAccount:
    with Session(engine, expire_on_commit=False) as session:
        return log_in(
            session=session,
            email=email,
            password=password,
            network=f"{network}",
            throttle=THROTTLE,
            now=at,
        )


def failures(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {row.subject: row.failures for row in session.exec(select(LoginFailure))}


def stored_hash(engine: Engine) -> str:
    with Session(engine) as session:
        return session.exec(select(PortalUser.password_hash)).one()


def test_an_account_past_its_failures_is_refused_even_the_right_password(
    engine: Engine, hashes: list[int]
) -> None:
    before = stored_hash(engine)
    for n in range(3):
        with pytest.raises(Unauthenticated):
            attempt(engine, EMAIL, f"guess number {n}", at=T0 + dt.timedelta(seconds=n))
    counted = failures(engine)

    with pytest.raises(Throttled, match="too many failed log-ins") as refused:
        attempt(engine, EMAIL.upper(), PASSWORD, network=AWAY, at=T0 + dt.timedelta(seconds=10))

    assert refused.value.rule == "portal.throttled"
    assert refused.value.retry_after == 50, "until the window of the first failure has passed"
    assert len(hashes) == 3, "the refused attempt hashed nothing"
    assert failures(engine) == counted, "and counted nothing"
    assert stored_hash(engine) == before
    later = attempt(engine, EMAIL, PASSWORD, at=T0 + dt.timedelta(seconds=61))
    assert later.user.email == EMAIL, "the window passed"
    assert not any(s.startswith("account:") for s in failures(engine)), "success forgets"


def test_a_network_past_its_failures_is_refused_for_every_address(engine: Engine) -> None:
    for n in range(5):
        with pytest.raises(Unauthenticated):
            attempt(engine, f"guess{n}@ruijin.example.cn", "a password")

    with pytest.raises(Throttled) as refused:
        attempt(engine, EMAIL, PASSWORD)
    assert refused.value.retry_after == 60
    assert failures(engine)[f"network:{HOME}"] == 5
    assert attempt(engine, EMAIL, PASSWORD, network=AWAY).user.email == EMAIL


def test_the_count_is_shared_by_every_process_on_the_database(
    engine: Engine, fresh_database_url: str
) -> None:
    """Two engines stand for two API workers or replicas."""
    other = create_db_engine(fresh_database_url)
    try:
        for n, on in enumerate([engine, other, engine]):
            with pytest.raises(Unauthenticated):
                attempt(on, EMAIL, "wrong", at=T0 + dt.timedelta(seconds=n))
        with pytest.raises(Throttled):
            attempt(other, EMAIL, PASSWORD, at=T0 + dt.timedelta(seconds=3))
    finally:
        other.dispose()


def test_an_unknown_address_costs_one_hash_and_counts_like_a_known_one(
    engine: Engine, hashes: list[int]
) -> None:
    with pytest.raises(Unauthenticated) as known:
        attempt(engine, EMAIL, "wrong password")
    with pytest.raises(Unauthenticated) as unknown:
        attempt(engine, "nobody@ruijin.example.cn", "wrong password")

    assert hashes == [10, 10], "one scrypt each, at the same cost"
    assert known.value.message == unknown.value.message
    assert sorted(failures(engine).values()) == [1, 1, 2], "each address once, the network twice"
    with Session(engine) as session:
        users = session.exec(select(func.count()).select_from(PortalUser)).one()
    assert users == 1, "no account appears for an unknown address"
