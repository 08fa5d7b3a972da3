"""Reorder plans from a dispense history built through a real server: JSON, CSV, who may read
them, the nightly store, and the command's table."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from medtrace.demo import GTIN, with_check_digit
from medtrace.models import Role
from medtrace.models.reorder import StoredReorderPlan
from medtrace.protocol.readings import format_time
from medtrace.services.registry import create_participant
from medtrace.services.reorder import PlanningParameters, store_reorder_plans
from support.chain import Chain, new_serial

TODAY = dt.datetime.now(dt.UTC).date()
PARAMS = {"history_days": 10, "lead_time_days": 2, "review_period_days": 5, "service_level": 0.95}


def _at(days_ago: int, hour: int = 10) -> str:
    day = TODAY - dt.timedelta(days=days_ago)
    return format_time(dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def history(chain: Chain) -> dict[str, Any]:
    """The pharmacy receives 4 units of lot SHORT (expiring in 3 days) and 11 of lot LONG
    (in a year), then dispenses 2 units 10 days ago, 1 unit 5 days ago and 3 yesterday.
    Events dated days back are older than the replay window: the stations send them as an
    outbox's offline catch-up."""
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    short = [new_serial() for _ in range(4)]
    long = [new_serial() for _ in range(11)]
    lots = [(s, "SHORT", TODAY + dt.timedelta(days=3)) for s in short] + [
        (s, "LONG", TODAY + dt.timedelta(days=365)) for s in long
    ]
    maker.api.capture(
        [
            maker.station.commission(GTIN, s, lot=lot, expiry=expiry, event_time=_at(20))
            for s, lot, expiry in lots
        ],
        catch_up=True,
    )
    serials = short + long
    maker.api.capture(
        [maker.station.ship(GTIN, s, to=hub.gln, event_time=_at(19)) for s in serials],
        catch_up=True,
    )
    hub.api.capture(
        [hub.station.receive(GTIN, s, event_time=_at(18)) for s in serials], catch_up=True
    )
    hub.api.capture(
        [hub.station.ship(GTIN, s, to=pharmacy.gln, event_time=_at(17)) for s in serials],
        catch_up=True,
    )
    pharmacy.api.capture(
        [pharmacy.station.receive(GTIN, s, event_time=_at(16)) for s in serials], catch_up=True
    )
    for days_ago, units in ((10, long[0:2]), (5, long[2:3]), (1, long[3:6])):
        pharmacy.api.capture(
            [pharmacy.station.dispense(GTIN, s, event_time=_at(days_ago)) for s in units],
            catch_up=True,
        )
    return {"short": short, "long": long}


def _plans(chain: Chain, token: str, path: str = "reorder-plans", **params: Any) -> httpx.Response:
    return httpx.get(
        f"{chain.server.url}/api/v1/{path}", params=PARAMS | params, headers=_auth(token)
    )


def test_a_plan_from_ten_days_of_dispensing_worked_by_hand(
    chain: Chain, history: dict[str, Any]
) -> None:
    response = _plans(chain, chain.pharmacy.token)
    assert response.status_code == 200, response.text
    [plan] = response.json()["data"]
    # daily use, oldest day first: [2, 0, 0, 0, 0, 1, 0, 0, 0, 3]: μ = 6/10 = 0.6
    # Σ(x−μ)² = 1.96 + 7·0.36 + 0.16 + 5.76 = 10.40; σ = √(10.40/9) = 1.074968
    # z(0.95) = 1.644854, z·σ = 1.768167; L = 2, R = 5
    # safety stock = z·σ·√2 = 2.500562; reorder point = 0.6·2 + 2.500562 = 3.700562
    # order-up-to = 0.6·7 + z·σ·√7 = 4.2 + 4.678124 = 8.878124
    # on hand: SHORT 4 units, 3 days left: usable min(4, 0.6·3) = 1.8; LONG 5 units: 5
    # usable 6.8, at risk 9 − 6.8 = 2.2; order ⌈8.878124 − 6.8⌉ = ⌈2.078124⌉ = 3
    assert (plan["gtin"], plan["dispensed"], plan["on_hand"]) == (GTIN, 6, 9)
    assert plan["mean_daily_use"] == pytest.approx(0.6)
    assert plan["std_daily_use"] == pytest.approx(math.sqrt(10.4 / 9))
    assert plan["safety_stock"] == pytest.approx(2.500562, abs=1e-6)
    assert plan["reorder_point"] == pytest.approx(3.700562, abs=1e-6)
    assert plan["order_up_to"] == pytest.approx(8.878124, abs=1e-6)
    assert plan["usable_on_hand"] == pytest.approx(6.8)
    assert plan["at_risk_of_expiry"] == pytest.approx(2.2)
    assert (plan["expiry_risk"], plan["reorder_now"], plan["order_quantity"]) == (True, False, 3)
    assert [(b["lot"], b["quantity"], b["days_to_expiry"]) for b in plan["batches"]] == [
        ("SHORT", 4, 3),
        ("LONG", 5, 365),
    ]


def test_the_plan_as_csv(chain: Chain, history: dict[str, Any]) -> None:
    response = _plans(chain, chain.pharmacy.token, "reorder-plans.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"reorder-{chain.pharmacy.gln}-" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [
        (r["gtin"], r["order_quantity"], r["at_risk_of_expiry"], r["expiry_risk"]) for r in rows
    ] == [(GTIN, "3", "2.20", "True")]
    same = _plans(chain, chain.pharmacy.token, format="csv")
    assert same.text == response.text


def test_who_may_read_a_pharmacys_plans(chain: Chain, history: dict[str, Any]) -> None:
    with Session(chain.server.engine) as session:
        regulator = create_participant(
            session=session,
            gln=with_check_digit("952000200000"),
            name="NMPA",
            role=Role.REGULATOR,
            city="Beijing",
        )
    theirs = _plans(chain, regulator.token, gln=chain.pharmacy.gln)
    assert theirs.json()["data"] == _plans(chain, chain.pharmacy.token).json()["data"]
    for token, params, status, rule in (
        (regulator.token, {}, 422, "reorder.gln_required"),
        (regulator.token, {"gln": chain.hub.gln}, 404, "reorder.unknown_pharmacy"),
        (chain.hub.token, {}, 403, "reorder.not_a_pharmacy"),
        (chain.pharmacy.token, {"gln": chain.hub.gln}, 403, "reorder.not_yours"),
        (chain.pharmacy.token, {"service_level": 1.5}, 422, "input.invalid"),
        (chain.pharmacy.token, {"history_days": 1}, 422, "input.invalid"),
    ):
        refused = _plans(chain, token, **params)
        assert (refused.status_code, refused.json()["detail"]["rule"]) == (status, rule), params
    assert httpx.get(f"{chain.server.url}/api/v1/reorder-plans").status_code == 401


def test_the_nightly_plans_are_stored_once_a_day(chain: Chain, history: dict[str, Any]) -> None:
    parameters = PlanningParameters(
        lead_time_days=2, review_period_days=5, service_level=0.95, history_days=10
    )
    with Session(chain.server.engine) as session:
        assert store_reorder_plans(session=session, today=TODAY, parameters=parameters) == 1
        assert store_reorder_plans(session=session, today=TODAY, parameters=parameters) == 1
        stored = session.exec(select(StoredReorderPlan)).all()
    assert [(p.gln, p.gtin, p.computed_on, p.order_quantity) for p in stored] == [
        (chain.pharmacy.gln, GTIN, TODAY, 3)
    ]
    assert stored[0].at_risk_of_expiry == pytest.approx(2.2)


def _env(chain: Chain) -> dict[str, str]:
    return os.environ | {
        "MEDTRACE_DATABASE_URL": chain.server.database_url,
        "MEDTRACE_DATA_DIR": str(chain.server.data_dir),
    }


@pytest.mark.slow
def test_the_command_prints_the_plan(chain: Chain, history: dict[str, Any]) -> None:
    medtrace = Path(sys.executable).parent / "medtrace"
    result = subprocess.run(
        [
            str(medtrace),
            "reorder",
            "plan",
            "--gln",
            chain.pharmacy.gln,
            "--lead-time",
            "2",
            "--review-period",
            "5",
            "--history-days",
            "10",
        ],
        env=_env(chain) | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if GTIN in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    # use/day, on hand, usable (6.8), at risk (2.2), reorder point, order
    assert (cells[0], cells[2:]) == (GTIN, ["0.60", "9", "7", "2", "3.7", "3"])
    bad = subprocess.run(
        [str(medtrace), "reorder", "plan", "--gln", "123"],
        env=_env(chain),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "rule:" in bad.stderr
