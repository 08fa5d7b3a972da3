"""Expiry alerts, who sees them, and signed webhooks received by a real HTTP server.

The receivers listen on 127.0.0.2, the one address the module's server and deliveries allow
(``webhook_allowed_networks``): every other loopback address stays refused, as any private
one is without the setting."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, func, update
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from medtrace.contracts.expiry import StockLine, expiry_findings
from medtrace.contracts.findings import Finding
from medtrace.db import create_db_engine
from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Participant, Role, utcnow
from medtrace.models.alerts import AlertKind, Delivery, DeliveryState, Severity, Subscription
from medtrace.schemas.alerts import SubscriptionCreate
from medtrace.services.alerts import check_expiry, record_findings, subscribe
from medtrace.services.registry import create_participant
from medtrace.services.webhooks import (
    BadSignature,
    DeliveryPolicy,
    deliver_due,
    sign,
    verify_signature,
)
from support.chain import Chain, new_serial

TODAY = dt.date.today()
RECEIVERS = "127.0.0.2"
POLICY = DeliveryPolicy(deadline=5, allowed_networks=(ipaddress.ip_network(f"{RECEIVERS}/32"),))


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"MEDTRACE_WEBHOOK_ALLOWED_NETWORKS": f'["{RECEIVERS}/32"]'}


# --- the rule on its own -----------------------------------------------------------------------


def line(expiry: dt.date) -> StockLine:
    return StockLine("9529012000002", "Pharmacy", GTIN, "L1", expiry, 12)


@pytest.mark.parametrize(
    ("days", "rule"),
    [(-1, "expiry.expired"), (0, "expiry.soon"), (30, "expiry.soon"), (31, None)],
)
def test_expiry_findings_draw_the_line_at_the_window(days: int, rule: str | None) -> None:
    found = expiry_findings([line(TODAY + dt.timedelta(days=days))], today=TODAY, warn_days=30)
    assert [f.rule for f in found] == ([rule] if rule else [])
    if rule == "expiry.expired":
        assert found[0].severity is Severity.CRITICAL
        assert "quarantine" in found[0].message


# --- through a live server ---------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver that checks every signature with the subscription's secret."""

    url: str = ""
    secret: str = ""
    answers: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            header = self.headers["Medtrace-Signature"]
            stamp = header.split(",")[0].removeprefix("t=")
            mac = hmac.new(state.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            ok = header == f"t={stamp},v1={mac.hexdigest()}"
            status = state.answers.pop(0) if state.answers else 200
            if ok and status == 200:
                state.received.append(json.loads(body))
            self.send_response(status if ok else 401)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer((RECEIVERS, 0), Handler)
    state.url = f"http://{RECEIVERS}:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stock(chain: Chain, receiver: Receiver) -> dict[str, str]:
    """Pharmacy: a lot expiring in 10 days. Distributor: a lot that expired yesterday."""
    soon, old = new_serial(), new_serial()
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    maker.api.capture(
        [
            maker.station.commission(GTIN, soon, lot="SOON1", expiry=TODAY + dt.timedelta(days=10)),
            maker.station.commission(GTIN, old, lot="OLD1", expiry=TODAY - dt.timedelta(days=1)),
        ]
    )
    shipped = f"{TODAY - dt.timedelta(days=3)}T10:00:00Z"  # while both were in date
    maker.api.capture(  # three days old: sent as an outbox's offline catch-up
        [maker.station.ship(GTIN, s, to=hub.gln, event_time=shipped) for s in (soon, old)],
        catch_up=True,
    )
    hub.api.capture([hub.station.receive(GTIN, s) for s in (soon, old)])
    hub.api.capture([hub.station.ship(GTIN, soon, to=pharmacy.gln)])
    pharmacy.api.capture([pharmacy.station.receive(GTIN, soon)])
    subscription = httpx.post(
        f"{chain.server.url}/api/v1/alerts/subscriptions",
        json={"url": receiver.url, "kinds": ["expiry"]},
        headers={"Authorization": f"Bearer {pharmacy.token}"},
    )
    assert subscription.status_code == 201
    receiver.secret = subscription.json()["secret"]
    receiver.received.clear()  # the receiver outlives one backend's server
    receiver.answers.clear()
    return {"soon": soon, "old": old}


def alerts_for(chain: Chain, token: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{chain.server.url}/api/v1/alerts",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_expiry_alerts_are_raised_once_and_seen_by_whom_they_concern(
    chain: Chain, stock: dict[str, str]
) -> None:
    with Session(chain.server.engine) as session:
        raised = check_expiry(session=session, today=TODAY, warn_days=30)
        again = check_expiry(session=session, today=TODAY, warn_days=30)
        regulator = create_participant(
            session=session,
            gln=with_check_digit("952000100000"),
            name="NMPA",
            role=Role.REGULATOR,
            city="Beijing",
        )
    assert sorted(a.rule for a in raised) == ["expiry.expired", "expiry.soon"]
    assert again == []

    pharmacy = alerts_for(chain, chain.pharmacy.token)
    hub = alerts_for(chain, chain.hub.token)
    assert [(a["rule"], a["lot"], a["unit_count"]) for a in pharmacy] == [
        ("expiry.soon", "SOON1", 1)
    ]
    assert [(a["rule"], a["lot"]) for a in hub] == [("expiry.expired", "OLD1")]
    assert len(alerts_for(chain, chain.maker.token)) == 2, "the maker's prefix covers both"
    assert len(alerts_for(chain, regulator.token)) == 2
    assert alerts_for(chain, regulator.token, severity="critical")[0]["lot"] == "OLD1"
    assert alerts_for(chain, regulator.token, lot="NOPE") == []
    bad = httpx.get(
        f"{chain.server.url}/api/v1/alerts",
        params={"kind": "bogus"},
        headers={"Authorization": f"Bearer {regulator.token}"},
    )
    assert (bad.status_code, bad.json()["detail"]["rule"]) == (422, "input.invalid")


def test_webhooks_are_signed_retried_and_delivered_once(
    chain: Chain, stock: dict[str, str], receiver: Receiver
) -> None:
    engine = chain.server.engine
    with Session(engine) as session:
        check_expiry(session=session, today=TODAY, warn_days=30)
    receiver.answers = [500]
    first = deliver_due(engine=engine, policy=POLICY)
    assert (first.delivered, first.retrying) == (0, 1)
    assert deliver_due(engine=engine, policy=POLICY).retrying == 0, "not due again yet"
    with Session(engine) as session, session.begin():
        session.exec(update(Delivery).values(next_attempt_at=utcnow()))  # type: ignore[call-overload]
    second = deliver_due(engine=engine, policy=POLICY)
    assert second.delivered == 1
    assert deliver_due(engine=engine, policy=POLICY).delivered == 0, "delivered exactly once"
    assert [(a["rule"], a["lot"]) for a in receiver.received] == [("expiry.soon", "SOON1")]
    with Session(engine) as session:
        delivery = session.exec(Delivery.__table__.select()).first()  # type: ignore[attr-defined]
        assert delivery is not None and delivery.state == DeliveryState.DELIVERED


def test_a_delivery_that_never_succeeds_fails_with_its_reason(
    chain: Chain, stock: dict[str, str], receiver: Receiver
) -> None:
    engine = chain.server.engine
    with Session(engine) as session, session.begin():
        session.exec(  # type: ignore[call-overload]
            update(Delivery).values(
                state=DeliveryState.PENDING, attempts=0, next_attempt_at=utcnow()
            )
        )
    receiver.answers = [503, 503]
    report = deliver_due(engine=engine, policy=replace(POLICY, max_attempts=1))
    assert report.failed == 1
    with Session(engine) as session:
        delivery = session.exec(Delivery.__table__.select()).first()  # type: ignore[attr-defined]
        assert delivery is not None
        assert (delivery.state, delivery.last_error) == (DeliveryState.FAILED, "HTTP 503")


def test_a_receiver_can_check_signatures_and_refuse_replays() -> None:
    body = b'{"rule": "expiry.soon"}'
    header = sign("s3cret", 1_700_000_000, body)
    verify_signature("s3cret", body, header, now=1_700_000_100)
    with pytest.raises(BadSignature, match="does not match"):
        verify_signature("s3cret", body + b" ", header, now=1_700_000_100)
    with pytest.raises(BadSignature, match="replay"):
        verify_signature("s3cret", body, header, now=1_700_009_999)
    with pytest.raises(BadSignature, match="malformed"):
        verify_signature("s3cret", body, "v1=abc", now=1_700_000_000)


# --- webhooks and hostile receivers ------------------------------------------------------------


HOSTILE_URLS = [
    "http://127.0.0.1:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:22/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://localhost:8000/",
    "http://10.0.0.5/",
    "http://100.100.100.200/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://0.0.0.0/",
    "https://240.0.0.1/",
]


def subscriptions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Subscription)).scalar_one())


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_webhook_to_an_internal_address_is_refused_at_registration(
    chain: Chain, url: str
) -> None:
    before = subscriptions(chain.server.engine)
    answer = httpx.post(
        f"{chain.server.url}/api/v1/alerts/subscriptions",
        json={"url": url},
        headers={"Authorization": f"Bearer {chain.pharmacy.token}"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]["rule"] == "webhook.forbidden_address"
    assert subscriptions(chain.server.engine) == before


@dataclass
class Hook:
    """A test receiver: how it answers, and what it saw."""

    url: str
    hits: list[float] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    seen: list[dict[str, int]] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)


Answer = Callable[[BaseHTTPRequestHandler, Hook], None]


@contextmanager
def hook(answer: Answer, host: str = RECEIVERS) -> Iterator[Hook]:
    """An HTTP server on ``host`` that reads each POST, notes when, then lets ``answer`` reply."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.hits.append(time.monotonic())
            try:
                answer(self, state)
            except OSError:  # the client hung up: what a deadline or a cap does
                self.close_connection = True
            finally:
                state.finished.set()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    state = Hook(url=f"http://{host}:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def ok(handler: BaseHTTPRequestHandler, _: Hook) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def subscribed_place(chain: Chain, *urls: str) -> str:
    """A new pharmacy with a webhook at each URL (made through the service, which checks them
    as registration does); its GLN."""
    gln = with_check_digit(f"95{secrets.randbelow(10**10):010d}")
    with Session(chain.server.engine) as session:
        place = create_participant(session=session, gln=gln, name="Hooked", role=Role.PHARMACY)
    for url in urls:
        with Session(chain.server.engine) as session:
            subscribe(
                session=session,
                participant=place.participant,
                subscription_in=SubscriptionCreate(url=url),  # type: ignore[arg-type]
                allowed_networks=POLICY.allowed_networks,
            )
    return gln


def alert_at(chain: Chain, gln: str) -> None:
    """Raise one alert about a place: a delivery to each of its webhooks, due now."""
    finding = Finding(
        kind=AlertKind.EXPIRY,
        severity=Severity.INFO,
        rule="test.webhook",
        dedup_key=f"test.webhook:{secrets.token_hex(8)}",
        message="a test alert",
        gln=gln,
    )
    with Session(chain.server.engine) as session:
        assert len(record_findings(session=session, findings=[finding])) == 1


def deliveries_to(chain: Chain, url: str) -> list[Delivery]:
    with Session(chain.server.engine) as session:
        return list(
            session.exec(
                select(Delivery)
                .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
                .where(col(Subscription.url) == url)
            ).all()
        )


def test_a_subscription_that_turned_hostile_is_refused_at_delivery(chain: Chain) -> None:
    """A URL accepted once (before this check, or whose name now resolves elsewhere) is
    checked again before each POST; a redirect to an internal address is not followed."""

    def bounce(handler: BaseHTTPRequestHandler, _: Hook) -> None:
        handler.send_response(302)
        handler.send_header("Location", trap.url)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with hook(ok, host="127.0.0.1") as trap, hook(bounce) as bouncer:
        gln = subscribed_place(chain, bouncer.url)
        hostile = [trap.url, trap.url.replace("127.0.0.1", "localhost")]
        with Session(chain.server.engine) as session, session.begin():
            place = session.exec(select(Participant).where(col(Participant.gln) == gln)).one()
            session.add_all(
                Subscription(participant_id=place.id, url=url, secret="s") for url in hostile
            )
        alert_at(chain, gln)
        report = deliver_due(engine=chain.server.engine, policy=POLICY)
    assert trap.hits == [], "nothing reached the internal address"
    assert len(bouncer.hits) == 1
    assert (report.delivered, report.retrying) == (0, 3)
    for url in hostile:
        [refused] = deliveries_to(chain, url)
        assert refused.state is DeliveryState.PENDING
        assert (refused.last_error or "").startswith("webhook.forbidden_address")
    [bounced] = deliveries_to(chain, bouncer.url)
    assert bounced.last_error == "HTTP 302 (redirects are not followed)"


def test_a_trickling_receiver_meets_one_deadline_for_the_whole_delivery(chain: Chain) -> None:
    def trickle(handler: BaseHTTPRequestHandler, _: Hook) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(50):  # a byte every 0.2 s: 10 s in all, no read ever waits 1 s
            handler.wfile.write(b"z")
            handler.wfile.flush()
            time.sleep(0.2)

    with hook(trickle) as slow:
        alert_at(chain, subscribed_place(chain, slow.url))
        started = time.monotonic()
        report = deliver_due(engine=chain.server.engine, policy=replace(POLICY, deadline=1))
        took = time.monotonic() - started
    assert took < 3, f"the delivery took {took:.1f} s against a 1 s deadline"
    assert report.retrying == 1
    [delivery] = deliveries_to(chain, slow.url)
    assert delivery.last_error == "no answer within the 1 s deadline"


def test_a_huge_answer_is_cut_off_after_a_few_kilobytes(chain: Chain) -> None:
    size = 256 * 1024 * 1024

    def flood(handler: BaseHTTPRequestHandler, state: Hook) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"x" * 65536
        state.sent.append(0)
        while state.sent[0] < size:
            handler.wfile.write(chunk)
            state.sent[0] += len(chunk)

    with hook(flood) as huge:
        alert_at(chain, subscribed_place(chain, huge.url))
        report = deliver_due(engine=chain.server.engine, policy=POLICY)
        assert huge.finished.wait(5), "the flood met a closed connection"
    assert report.delivered == 1, "its status was 200: delivered"
    assert huge.sent[0] < 32 * 1024 * 1024, f"{huge.sent[0]} bytes were taken from it"


def test_a_slow_subscriber_does_not_delay_a_fast_one(chain: Chain) -> None:
    def dawdle(handler: BaseHTTPRequestHandler, state: Hook) -> None:
        time.sleep(2)
        ok(handler, state)

    with hook(dawdle) as slow, hook(ok) as fast:
        alert_at(chain, subscribed_place(chain, slow.url, fast.url))  # the slow one is first
        started = time.monotonic()
        report = deliver_due(engine=chain.server.engine, policy=POLICY)
    assert report.delivered == 2
    assert fast.hits[0] - started < 1, "the fast subscriber waited for the slow one"


def test_no_database_connection_is_held_while_a_post_is_on_the_wire(chain: Chain) -> None:
    url = make_url(chain.server.database_url)
    postgres = url.get_backend_name() == "postgresql"
    if postgres:
        url = url.update_query_dict({"application_name": "webhook-test"})
    engine = create_db_engine(url.render_as_string(hide_password=False))

    def look(handler: BaseHTTPRequestHandler, state: Hook) -> None:
        seen = {"checked_out": engine.pool.checkedout()}  # type: ignore[attr-defined]
        if postgres:
            with psycopg.connect(chain.server.database_url.replace("+psycopg", "")) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'webhook-test' AND state LIKE 'idle in transaction%'"
                ).fetchone()
            seen["idle_in_transaction"] = row[0] if row else -1
        state.seen.append(seen)
        ok(handler, state)

    try:
        with hook(look) as watcher:
            alert_at(chain, subscribed_place(chain, watcher.url))
            report = deliver_due(engine=engine, policy=POLICY)
    finally:
        engine.dispose()
    assert report.delivered == 1
    expected = {"checked_out": 0} | ({"idle_in_transaction": 0} if postgres else {})
    assert watcher.seen == [expected]
