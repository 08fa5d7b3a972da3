"""``medtrace audit`` checks every derived row against its leaf, on SQLite and PostgreSQL.

A store is built through a real server (custody events, a pallet, sensor readings, a
cold-chain alert holding a unit), then one column at a time is changed directly in the
database, as an intruder or a bad migration would: the audit must name the row (table, key,
column, stored value, value from the leaf) and fail, and an untampered store must pass.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Table, and_, select, update
from sqlmodel import Session

from medtrace import ledger
from medtrace.contracts.findings import Finding
from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.models import Event, Unit
from medtrace.models.alerts import Alert, AlertKind, Severity
from medtrace.models.iot import Reading
from medtrace.models.recalls import Recall
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import format_time, reading_topic, sign_reading
from medtrace.services.alerts import record_findings
from medtrace.services.audit import Mismatch, audit_derived
from support.chain import EXPIRY, Chain, new_serial, signed
from support.live import MEDTRACE, LiveServer

_units: Table = Unit.__table__  # type: ignore[attr-defined]
_events: Table = Event.__table__  # type: ignore[attr-defined]
_readings: Table = Reading.__table__  # type: ignore[attr-defined]
_alerts: Table = Alert.__table__  # type: ignore[attr-defined]
_recalls: Table = Recall.__table__  # type: ignore[attr-defined]
RECALLED_LOT = "LOTRC1"


@dataclass(frozen=True)
class Store:
    """What the module's store holds: a held unit, a unit on a pallet, a sensor, an alert."""

    held: str  # at the pharmacy, quarantined by a cold-chain alert
    packed: str  # in a case, on a pallet received by the hub, then the pallet unpacked
    case: str
    sensor: str
    dedup_key: str


def _auth(member: Enrolled) -> dict[str, str]:
    return {"Authorization": f"Bearer {member.token}"}


def _sensor_with_readings(chain: Chain) -> str:
    """A fridge at the hub with three readings, the second of them at 12 °C."""
    sensor_id, key = f"fridge-{secrets.token_hex(4)}", Ed25519PrivateKey.generate()
    url = chain.server.url
    created = httpx.post(
        f"{url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(key))},
        headers=_auth(chain.hub),
    )
    assert created.status_code == 201, created.text
    now = dt.datetime.now(dt.UTC)
    messages = []
    for seq, celsius in ((1, 5.0), (2, 12.0), (3, 4.5)):
        reading = {
            "sensor_id": sensor_id,
            "seq": seq,
            "time": format_time(now - dt.timedelta(minutes=10 - seq)),
            "temperature_c": celsius,
        }
        messages.append(
            {"topic": reading_topic(sensor_id), "payload": sign_reading(reading, key).decode()}
        )
    relayed = httpx.post(f"{url}/api/v1/readings", json=messages, headers=_auth(chain.hub))
    assert relayed.json()["accepted"] == 3, relayed.text
    return sensor_id


@pytest.fixture(scope="module")
def store(chain: Chain) -> Store:
    held, packed = new_serial(), new_serial()
    case, pallet = (with_check_digit(f"39521234{secrets.randbelow(10**9):09d}") for _ in "cp")
    chain.to_pharmacy(held)
    chain.commission(packed)
    maker, hub = chain.maker, chain.hub
    maker.api.capture(
        [
            signed(maker, "pack", sscc=case, children=[{"gtin": GTIN, "serial": packed}]),
            signed(maker, "pack", sscc=pallet, children=[{"sscc": case}]),
            signed(maker, "ship", sscc=pallet, destination_gln=hub.gln),
        ]
    )
    hub.api.capture([signed(hub, "receive", sscc=pallet), signed(hub, "unpack", sscc=pallet)])
    dedup_key = f"cold_chain.excursion:audit:{held}"
    breach = Finding(
        kind=AlertKind.COLD_CHAIN,
        severity=Severity.CRITICAL,
        rule="cold_chain.excursion",
        dedup_key=dedup_key,
        message="75 min outside 2–8 °C: quarantined until QA releases it",
        gln=chain.pharmacy.gln,
        gtin=GTIN,
        lot="LOT42",
        unit_count=1,
        quarantine_units=((GTIN, held),),
    )
    with Session(chain.server.engine) as session:
        record_findings(session=session, findings=[breach])
    recalled = new_serial()
    maker.api.capture([maker.station.commission(GTIN, recalled, lot=RECALLED_LOT, expiry=EXPIRY)])
    recall = maker.station.recall(GTIN, RECALLED_LOT, reason="sterility not assured")
    answer = httpx.post(f"{chain.server.url}/api/v1/recalls", json=recall, headers=_auth(maker))
    assert answer.status_code == 201, answer.text
    sensor = _sensor_with_readings(chain)
    chain.server.wait_for_checkpoint(chain.server.leaves())
    return Store(held=held, packed=packed, case=case, sensor=sensor, dedup_key=dedup_key)


def medtrace_audit(server: LiveServer) -> subprocess.CompletedProcess[str]:
    """The real ``medtrace audit`` against the server's database and log key."""
    env = {
        **os.environ,
        "MEDTRACE_DATA_DIR": str(server.data_dir),
        "MEDTRACE_DATABASE_URL": server.database_url,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [str(MEDTRACE), "audit"], env=env, capture_output=True, text=True, timeout=120
    )


@contextmanager
def tampered(
    server: LiveServer, table: Table, where: Any, column: str, value: Any
) -> Iterator[Any]:
    """Set ``column`` of the one row ``where`` selects to ``value``, yield its old value,
    and put it back afterwards (the module's store is shared)."""
    keys = list(table.primary_key.columns)
    with server.engine.begin() as conn:
        row = conn.execute(select(table.c[column], *keys).where(where)).one()
        by_key = and_(*(k == row._mapping[k] for k in keys))  # ``where`` may name the column
        conn.execute(update(table).where(by_key).values({column: value}))
    try:
        yield row[0]
    finally:
        with server.engine.begin() as conn:
            conn.execute(update(table).where(by_key).values({column: row[0]}))


def _audit(server: LiveServer) -> list[Mismatch]:
    """The derived-row audit; it must change nothing (the log's size, for one)."""
    with server.engine.connect() as conn:
        size = ledger.committed_size(conn)
    found = list(audit_derived(server.engine))
    with server.engine.connect() as conn:
        assert ledger.committed_size(conn) == size
    return found


def _unit(serial: str) -> Any:
    return and_(_units.c.gtin == GTIN, _units.c.serial == serial)


def _receipt_at(gln: str, serial: str) -> Any:
    return and_(
        _events.c.gtin == GTIN,
        _events.c.serial == serial,
        _events.c.type == "receive",
        _events.c.gln == gln,
    )


def test_an_untampered_store_passes(chain: Chain, store: Store) -> None:
    assert _audit(chain.server) == []
    result = medtrace_audit(chain.server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every derived row agrees with its leaf" in result.stdout


def test_a_changed_holder_fails_the_command_naming_the_row(chain: Chain, store: Store) -> None:
    with tampered(chain.server, _units, _unit(store.held), "holder_gln", chain.hub.gln) as old:
        result = medtrace_audit(chain.server)
        with chain.server.engine.connect() as conn:
            still = conn.execute(select(_units.c.holder_gln).where(_unit(store.held))).scalar()
    assert result.returncode == 1, result.stdout + result.stderr
    output = " ".join((result.stdout + result.stderr).split())
    assert (
        f"units {GTIN}/{store.held}: holder_gln is '{chain.hub.gln}' in the store but '{old}' "
        "in leaf" in output
    )
    assert "1 derived value(s) differ from their leaves" in output
    assert still == chain.hub.gln, "the audit reports; it does not repair"


NEXT_YEAR = dt.date.today() + dt.timedelta(days=730)


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("units", "state", "dispensed"),
        ("units", "quarantined", False),
        ("units", "expiry", NEXT_YEAR),
        ("units", "lot", "LOT99"),
        ("events", "gln", "0000000000000"),
        ("events", "event_time", dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        ("events", "biz_location", "0000000000000"),
        ("sensor_readings", "temperature_c", 4.0),
        ("sensor_readings", "taken_at", dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        ("alerts", "message", "all fine, nothing to see"),
        ("alerts", "severity", "info"),
        ("recalls", "lot", "LOTRC2"),
        ("recalls", "gtin", "09521234000099"),
    ],
)
def test_each_derived_column_a_verdict_reads_is_checked(
    chain: Chain, store: Store, table: str, column: str, value: Any
) -> None:
    target, where = {
        "units": (_units, _unit(store.held)),
        "events": (_events, _receipt_at(chain.pharmacy.gln, store.held)),
        "sensor_readings": (
            _readings,
            and_(_readings.c.sensor_id == store.sensor, _readings.c.seq == 2),
        ),
        "alerts": (_alerts, _alerts.c.dedup_key == store.dedup_key),
        "recalls": (_recalls, _recalls.c.lot == RECALLED_LOT),
    }[table]
    with tampered(chain.server, target, where, column, value) as old:
        found = _audit(chain.server)
    assert [(m.table, m.column) for m in found if m.table == table][:1] == [
        (table, "message/evidence/unit_count" if column == "message" else column)
    ], found
    first = next(m for m in found if m.table == table)
    if column != "message":
        assert str(old) in str(first.recorded) or first.recorded == old, first
    assert first.leaf_index is not None
    assert _audit(chain.server) == [], "put back, the store passes again"


def test_a_unit_on_a_pallet_is_derived_through_its_containers(chain: Chain, store: Store) -> None:
    with chain.server.engine.connect() as conn:
        row = conn.execute(select(_units).where(_unit(store.packed))).one()
    assert (row.state, row.parent_sscc, row.holder_gln) == ("received", store.case, chain.hub.gln)
    with tampered(chain.server, _units, _unit(store.packed), "parent_sscc", None):
        found = _audit(chain.server)
    assert [(m.key, m.column, m.recorded) for m in found] == [
        (f"{GTIN}/{store.packed}", "parent_sscc", store.case)
    ]


def test_stored_text_is_printed_as_it_is_not_as_terminal_markup(chain: Chain, store: Store) -> None:
    where = _alerts.c.dedup_key == store.dedup_key
    with tampered(chain.server, _alerts, where, "message", "[bold]all fine[/bold]"):
        result = medtrace_audit(chain.server)
    assert result.returncode == 1, result.stdout + result.stderr
    output = " ".join((result.stdout + result.stderr).split())
    assert "message/evidence/unit_count" in output
    assert '"message":"[bold]all fine[/bold]"' in output


def test_a_leaf_that_no_longer_parses_is_named_not_a_crash(chain: Chain, store: Store) -> None:
    """The ledger audit names a changed leaf; the row audit must name the rows it breaks."""
    leaves = ledger.leaves_table
    with chain.server.engine.connect() as conn:
        index = conn.execute(
            select(_events.c.leaf_index).where(_receipt_at(chain.pharmacy.gln, store.held))
        ).scalar_one()
        original = conn.execute(select(leaves.c.data).where(leaves.c.idx == index)).scalar_one()
    gln = chain.pharmacy.gln.encode()
    broken = gln[:-1] + bytes([ord("0") + (gln[-1] - ord("0") + 1) % 10])  # a bad check digit
    altered = original.replace(b'"gln":"' + gln, b'"gln":"' + broken)
    assert altered != original
    with tampered(chain.server, leaves, leaves.c.idx == index, "data", altered):
        found = _audit(chain.server)
    assert [(m.table, m.column) for m in found] == [
        ("events", "leaf_index"),
        ("units", "history"),
    ], found
    assert "check digit" in str(found[0]) and f"leaf {index}" in str(found[1])
