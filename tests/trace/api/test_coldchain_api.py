"""The cold-chain rule through a real server: quarantine, QA release, the alert's leaf on the
ledger, sensor silence, and the MQTT alert topic (a real Mosquitto subscriber)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select

from independent_checker import HttpKeySource, check_url, check_verify_document
from medtrace.cli.ledger import envelope_problem
from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.ledger import leaf_hash, verify_inclusion
from medtrace.models import utcnow
from medtrace.models.alerts import Alert
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import format_time, reading_topic, sign_reading
from medtrace.schemas.sensors import TemperatureBand
from medtrace.services.alert_topic import MqttPublisher, publish_due
from medtrace.services.coldchain import ColdChainLimits, check_cold_chain, cold_chain_scan
from medtrace.services.temperature import TemperaturePolicy
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.iot import MOSQUITTO_HOST, MOSQUITTO_PORT, broker_up, registered_long_ago
from support.live import free_port

MINUTE = dt.timedelta(minutes=1)
JSON = {"Accept": "application/json"}
FRIDGE_WARM = with_check_digit("952567800010")
FRIDGE_CLEAN = with_check_digit("952567800020")
DEFAULT = TemperaturePolicy(
    band=TemperatureBand(min_c=2.0, max_c=8.0, source="test default"),
    max_gap=dt.timedelta(minutes=30),
    binding_backdate=dt.timedelta(days=1),
)
LIMITS = ColdChainLimits(
    max_excursion=60 * MINUTE,
    excursion_budget=240 * MINUTE,
    freeze_c=-0.5,
    max_freeze=60 * MINUTE,
    mkt_limit_c=8.0,
    mkt_window=dt.timedelta(hours=24),
    max_silence=60 * MINUTE,
)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signed(member: Enrolled, kind: str, when: dt.datetime, **fields: Any) -> dict[str, Any]:
    station = member.station
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": format_time(when),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


def _sensor(chain: Chain, target: str, since: dt.datetime) -> tuple[str, Ed25519PrivateKey]:
    """A sensor of the distributor's, bound to the place ``target`` from ``since``."""
    sensor_id, key = f"fridge-{secrets.token_hex(4)}", Ed25519PrivateKey.generate()
    url, headers = chain.server.url, _auth(chain.hub.token)
    registered = httpx.post(
        f"{url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(key))},
        headers=headers,
    )
    assert registered.status_code == 201, registered.text
    registered_long_ago(chain.server, sensor_id)
    bound = httpx.post(
        f"{url}/api/v1/sensors/{sensor_id}/bindings",
        json={"kind": "place", "target": target, "valid_from": since.isoformat()},
        headers=headers,
    )
    assert bound.status_code == 201, bound.text
    return sensor_id, key


def _relay(chain: Chain, sensor_id: str, key: Ed25519PrivateKey, points: list[Any]) -> None:
    messages = []
    for seq, (when, celsius) in enumerate(points):
        reading = {
            "sensor_id": sensor_id,
            "seq": seq,
            "time": format_time(when),
            "temperature_c": celsius,
        }
        messages.append(
            {"topic": reading_topic(sensor_id), "payload": sign_reading(reading, key).decode()}
        )
    response = httpx.post(
        f"{chain.server.url}/api/v1/readings", json=messages, headers=_auth(chain.hub.token)
    )
    assert response.json()["accepted"] == len(messages), response.text


def _check(chain: Chain) -> list[Any]:
    with Session(chain.server.engine) as session:
        return check_cold_chain(session=session, now=utcnow(), default=DEFAULT, limits=LIMITS)


def _verify(chain: Chain, serial: str) -> dict[str, Any]:
    url = chain.server.url + digital_link_path(GTIN, serial, lot=LOT)
    response = httpx.get(url, headers=JSON)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _alerts(chain: Chain, token: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{chain.server.url}/api/v1/alerts", params=params, headers=_auth(token))
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _wait_for_checkpoint(chain: Chain, covering: int) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        note = httpx.get(f"{chain.server.url}/api/v1/ledger/checkpoint")
        if note.status_code == 200 and int(note.text.splitlines()[1]) > covering:
            return int(note.text.splitlines()[1])
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint covered leaf {covering} within 20 s")


@pytest.fixture(scope="module")
def fridges(chain: Chain) -> dict[str, list[str]]:
    """Two units stored in a fridge with a 75-minute excursion, two in a clean fridge; a
    sensor in each reporting every 15 minutes from the store until a quarter-hour ago."""
    hub, maker = chain.hub, chain.maker
    t0 = utcnow().replace(microsecond=0) - 4 * 60 * MINUTE
    warm, clean = [new_serial(), new_serial()], [new_serial(), new_serial()]
    serials = warm + clean
    maker.api.capture(
        [
            maker.station.commission(GTIN, s, lot=LOT, expiry=EXPIRY, event_time=format_time(t0))
            for s in serials
        ]
    )
    maker.api.capture(
        [
            maker.station.ship(GTIN, s, to=hub.gln, event_time=format_time(t0 + 5 * MINUTE))
            for s in serials
        ]
    )
    hub.api.capture(
        [hub.station.receive(GTIN, s, event_time=format_time(t0 + 10 * MINUTE)) for s in serials]
    )
    hub.api.capture(
        [
            _signed(hub, "store", t0 + 15 * MINUTE, gtin=GTIN, serial=s, location_gln=fridge)
            for fridges, fridge in ((warm, FRIDGE_WARM), (clean, FRIDGE_CLEAN))
            for s in fridges
        ]
    )
    times = [t0 + (15 + 15 * k) * MINUTE for k in range(15)]  # the last is 15 min ago
    warm_sensor = _sensor(chain, FRIDGE_WARM, t0)
    clean_sensor = _sensor(chain, FRIDGE_CLEAN, t0)
    # readings 4 to 8 are out of band: 5 × 15 min = 75 min, over the 60 allowed
    _relay(chain, *warm_sensor, [(t, 12.5 if 4 <= k <= 8 else 5.0) for k, t in enumerate(times)])
    _relay(chain, *clean_sensor, [(t, 5.0) for t in times])
    return {"warm": warm, "clean": clean}


def test_an_excursion_quarantines_the_units_held_there_until_qa_releases_them(
    chain: Chain, fridges: dict[str, list[str]]
) -> None:
    hub = chain.hub
    raised = _check(chain)
    assert [(a.rule, a.unit_count, a.gln) for a in raised] == [("cold_chain.excursion", 2, hub.gln)]
    alert = raised[0]
    assert alert.evidence["minutes"] == 75 and alert.evidence["where"] == FRIDGE_WARM
    assert sorted(alert.evidence["units"]) == sorted(f"{GTIN}/{s}" for s in fridges["warm"])
    assert alert.evidence["highest_c"] == 12.5 and alert.evidence["mkt_c"] == 12.5
    assert len(alert.evidence["readings"]) == 5
    assert _check(chain) == [], "raised once"
    listed = _alerts(chain, hub.token, kind="cold_chain")
    assert [(a["id"], a["leaf_index"]) for a in listed] == [(alert.id, alert.leaf_index)]

    for serial in fridges["clean"]:
        assert _verify(chain, serial)["verdict"] == "genuine"
    held = fridges["warm"][0]
    verify = _verify(chain, held)
    assert verify["verdict"] == "quarantined"
    assert any("cold_chain.excursion" in r and "75 min" in r for r in verify["reasons"])
    assert verify["quarantine"]["leaf_index"] == alert.leaf_index
    page = httpx.get(chain.server.url + digital_link_path(GTIN, held, lot=LOT))
    assert page.status_code == 200 and "cold_chain.excursion" in page.text
    assert alert.leaf_index is not None
    _wait_for_checkpoint(chain, alert.leaf_index)
    url = chain.server.url + digital_link_path(GTIN, held, lot=LOT)
    checks = check_url(url)
    assert [(c.event_id, c.status) for c in checks if c.event_id == "alert"] == [("alert", "ok")]
    assert all(c.status == "ok" for c in checks), checks
    _checker_refuses_a_forged_quarantine(chain, held)

    refused = httpx.post(
        f"{chain.server.url}/api/v1/capture",
        json=[hub.station.ship(GTIN, held, to=chain.pharmacy.gln)],
        headers=_auth(hub.token),
    )
    assert (refused.status_code, refused.json()["detail"]["rule"]) == (
        409,
        "custody.quarantined",
    )
    hub.api.capture([_signed(hub, "release", utcnow(), gtin=GTIN, serial=held)])
    released = _verify(chain, held)
    assert (released["verdict"], released["quarantine"]) == ("genuine", None)
    assert _check(chain) == []
    assert _verify(chain, held)["verdict"] == "genuine", "a release is not undone by a re-run"
    assert _verify(chain, fridges["warm"][1])["verdict"] == "quarantined"
    hub.api.capture([hub.station.ship(GTIN, held, to=chain.pharmacy.gln)])


def _checker_refuses_a_forged_quarantine(chain: Chain, serial: str) -> None:
    doc = _verify(chain, serial)
    with httpx.Client() as client:
        keys = HttpKeySource(client, chain.server.url)
        name, log_key = keys.log_key()

        def alert_check(quarantine: dict[str, Any]) -> tuple[str, str]:
            results = check_verify_document(
                doc | {"quarantine": quarantine}, log_key, name, keys.station_key
            )
            [result] = [r for r in results if r.event_id == "alert"]
            return result.status, result.reason

        shown = doc["quarantine"]
        assert alert_check(shown)[0] == "ok"
        assert alert_check(shown | {"rule": "cold_chain.freeze"}) == (
            "failed",
            "the quarantine's rule is not the one its alert leaf records",
        )
        leaf = base64.b64decode(shown["leaf"])
        other = base64.b64encode(leaf.replace(b'"critical"', b'"warning"')).decode()
        assert alert_check(shown | {"leaf": other}) == (
            "failed",
            f"inclusion proof for leaf {shown['leaf_index']} does not verify against the "
            "checkpoint root",
        )
        assert len(shown["inclusion_proof"]) > 1
        proof = list(reversed(shown["inclusion_proof"]))
        assert alert_check(shown | {"inclusion_proof": proof})[0] == "failed"


def test_an_alerts_leaf_is_public_and_proven_by_its_inclusion_proof(
    chain: Chain, fridges: dict[str, list[str]]
) -> None:
    [alert] = _alerts(chain, chain.hub.token, kind="cold_chain")
    index = alert["leaf_index"]
    _wait_for_checkpoint(chain, index)
    url = chain.server.url
    checkpoint = httpx.get(f"{url}/api/v1/ledger/checkpoint").text.splitlines()
    size, root = int(checkpoint[1]), base64.b64decode(checkpoint[2])
    [stored] = httpx.get(
        f"{url}/api/v1/ledger/leaves", params={"start": index, "end": index + 1}
    ).json()
    leaf = base64.b64decode(stored["data"])
    # anyone who can read the alert recomputes its leaf: public fields, and the hash of the rest
    details = {k: alert[k] for k in ("evidence", "message", "unit_count")}
    expected = {
        "alert": {
            "details_sha256": hashlib.sha256(rfc8785.dumps(details)).hexdigest(),
            "gln": alert["gln"],
            "gtin": alert["gtin"],
            "kind": "cold_chain",
            "lot": alert["lot"],
            "raised_at": json.loads(leaf)["alert"]["raised_at"],
            "rule": "cold_chain.excursion",
            "severity": "critical",
        }
    }
    assert leaf == rfc8785.dumps(expected)
    raised_at = dt.datetime.fromisoformat(expected["alert"]["raised_at"])
    assert raised_at == dt.datetime.fromisoformat(alert["created_at"])
    assert b"units" not in leaf and b"unit_count" not in leaf, "no quantities in a public leaf"
    proof = httpx.get(
        f"{url}/api/v1/ledger/proof/inclusion", params={"index": index, "size": size}
    ).json()
    assert verify_inclusion(leaf_hash(leaf), index, size, [bytes.fromhex(h) for h in proof], root)
    assert not verify_inclusion(
        leaf_hash(leaf + b" "), index, size, [bytes.fromhex(h) for h in proof], root
    )
    assert envelope_problem(leaf, {}.get) is None
    assert envelope_problem(leaf.replace(b"{", b"{ ", 1), {}.get) == "not RFC 8785 canonical JSON"


def test_a_bound_sensor_that_falls_silent_raises_the_no_data_alert_from_the_command(
    chain: Chain, fridges: dict[str, list[str]]
) -> None:
    quiet, _ = _sensor(chain, chain.hub.gln, utcnow() - 90 * MINUTE)
    env = os.environ | {
        "MEDTRACE_DATABASE_URL": chain.server.database_url,
        "MEDTRACE_DATA_DIR": str(chain.server.data_dir),
        "COLUMNS": "300",
    }
    command = [str(Path(sys.executable).parent / "medtrace"), "alerts", "check"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert "cold_chain.no_data" in first.stdout and quiet in first.stdout
    assert "1 new alert(s)" in first.stdout, "the excursion was raised before: not again"
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert "0 new alert(s)" in again.stdout
    [alert] = _alerts(chain, chain.hub.token, kind="sensor_silent")
    assert (alert["rule"], alert["gln"]) == ("cold_chain.no_data", chain.hub.gln)
    assert alert["evidence"]["sensor_id"] == quiet
    assert alert["evidence"]["silent_minutes"] >= 90


@pytest.mark.mqtt
def test_new_alerts_reach_a_real_mqtt_subscriber_once(
    chain: Chain, fridges: dict[str, list[str]]
) -> None:
    if not broker_up():
        pytest.fail(f"no MQTT broker at {MOSQUITTO_HOST}:{MOSQUITTO_PORT}")
    engine = chain.server.engine
    with Session(engine) as session:
        ours = {(a.id, a.leaf_index) for a in session.exec(select(Alert))}
    received: list[dict[str, Any]] = []
    subscribed = threading.Event()
    subscriber = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"regulator-{secrets.token_hex(4)}"
    )
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.on_message = lambda _c, _u, message: received.append(
        {"topic": message.topic, "qos": message.qos, **json.loads(message.payload)}
    )
    subscriber.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
    subscriber.subscribe("medtrace/alerts/#", qos=1)
    subscriber.loop_start()
    try:
        assert subscribed.wait(5)
        publisher = MqttPublisher(MOSQUITTO_HOST, MOSQUITTO_PORT, client_id="medtrace-test")
        try:
            assert publish_due(engine=engine, publisher=publisher) == len(ours)
            assert publish_due(engine=engine, publisher=publisher) == 0, "published once"
        finally:
            publisher.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(
            [m for m in received if (m["id"], m["leaf_index"]) in ours]
        ) < len(ours):
            time.sleep(0.05)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    mine = [m for m in received if (m["id"], m["leaf_index"]) in ours]
    assert sorted((m["topic"], m["qos"]) for m in mine) == [
        ("medtrace/alerts/cold_chain", 1),
        ("medtrace/alerts/sensor_silent", 1),
    ]
    with Session(engine) as session:
        assert all(a.published_at is not None for a in session.exec(select(Alert)))


def test_a_broker_that_is_away_leaves_alerts_for_the_next_pass(chain: Chain) -> None:
    publisher = MqttPublisher("127.0.0.1", free_port(), client_id="medtrace-test-away")
    with Session(chain.server.engine) as session, session.begin():
        for alert in session.exec(select(Alert)):
            alert.published_at = None
    try:
        assert publish_due(engine=chain.server.engine, publisher=publisher) == 0
    finally:
        publisher.close()
    with Session(chain.server.engine) as session:
        assert all(a.published_at is None for a in session.exec(select(Alert)))


def test_a_lot_records_limits_are_the_ones_the_rule_applies(
    chain: Chain, fridges: dict[str, list[str]]
) -> None:
    maker = chain.maker
    station = maker.station
    event = {
        "type": "lot_record",
        "gtin": GTIN,
        "lot": LOT,
        "version": 1,
        "production_date": "2026-10-01",
        "expiry": EXPIRY.isoformat(),
        "quantity": 100,
        "product": {
            "name_en": "Insulin glargine 100 U/ml",
            "storage_low_c": 2.0,
            "storage_high_c": 8.0,
            "cold_chain": {"max_excursion_minutes": 30, "mkt_limit_c": 7.5},
        },
        "gln": station.gln,
        "event_time": format_time(utcnow()),
        "station_id": station.station_id,
    }
    envelope = sign_event(event, station_id=station.station_id, key=station.key)
    posted = httpx.post(
        f"{chain.server.url}/api/v1/lots",
        headers=_auth(maker.token),
        data={"envelope": json.dumps(envelope)},
    )
    assert posted.status_code == 201, posted.text
    shown = httpx.get(f"{chain.server.url}/api/v1/lots/{GTIN}/{LOT}").json()["product"]
    assert shown["cold_chain"] == {
        "max_excursion_minutes": 30,
        "excursion_budget_minutes": None,
        "freeze_c": None,
        "max_freeze_minutes": None,
        "mkt_limit_c": 7.5,
        "mkt_window_hours": None,
    }
    with Session(chain.server.engine) as session:
        found = cold_chain_scan(session=session, now=utcnow(), default=DEFAULT, limits=LIMITS)
    [excursion] = [f for f in found if f.rule == "cold_chain.excursion"]
    assert excursion.evidence["limit_minutes"] == 30
    assert excursion.evidence["profile"].endswith(
        "max_excursion_minutes, mkt_limit_c from its lot record"
    )
