"""Expiry alerts, who sees them, and signed webhooks received by a real HTTP server."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session

from medtrace.contracts.expiry import StockLine, expiry_findings
from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Role, utcnow
from medtrace.models.alerts import Delivery, DeliveryState, Severity
from medtrace.services.alerts import check_expiry
from medtrace.services.registry import create_participant
from medtrace.services.webhooks import BadSignature, deliver_due, sign, verify_signature
from support.chain import Chain, new_serial

TODAY = dt.date.today()


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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
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
    with httpx.Client(timeout=5) as http:
        first = deliver_due(engine=engine, http=http)
        assert (first.delivered, first.retrying) == (0, 1)
        assert deliver_due(engine=engine, http=http).retrying == 0, "not due again yet"
        with Session(engine) as session, session.begin():
            session.exec(update(Delivery).values(next_attempt_at=utcnow()))  # type: ignore[call-overload]
        second = deliver_due(engine=engine, http=http)
        assert second.delivered == 1
        assert deliver_due(engine=engine, http=http).delivered == 0, "delivered exactly once"
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
    with httpx.Client(timeout=5) as http:
        report = deliver_due(engine=engine, http=http, max_attempts=1)
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
