"""Who may bind a sensor where (issue 18, finding 1) and who sees refused readings (finding
10), replayed through a real server process on SQLite and PostgreSQL.

The attack: a pharmacy binds its own logger to a distributor's site (or to a shipment it is
no party to), posts warm readings, and the next cold-chain check quarantines the
distributor's stock. Binding there is refused now; a binding of that kind stored before the
fix counts for nothing, because every history judges each binding when it reads it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import subprocess
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, col, select

from medtrace.demo import GTIN, Enrolled
from medtrace.models import Unit, utcnow
from medtrace.models.alerts import Alert
from medtrace.models.iot import BindingKind, ReadingReject, Sensor, SensorBinding
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import format_time, reading_topic, sign_reading
from medtrace.schemas.sensors import TemperatureBand
from medtrace.services.coldchain import ColdChainLimits, check_cold_chain
from medtrace.services.temperature import TemperaturePolicy
from support.chain import EXPIRY, LOT, Chain, new_serial, new_sscc
from support.iot import MEDTRACE, new_participant, registered_long_ago

HOUR, MINUTE = dt.timedelta(hours=1), dt.timedelta(minutes=1)
REJECT_CAP = 4
POLICY = TemperaturePolicy(
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
    max_silence=24 * HOUR,
)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """A small cap on stored rejects, so that the test can overflow it."""
    return {"MEDTRACE_MAX_REJECTS_PER_SENSOR": str(REJECT_CAP)}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _register(chain: Chain, token: str) -> tuple[str, Ed25519PrivateKey]:
    """A sensor of the token's participant, registered a month ago."""
    sensor_id, key = f"evil-{secrets.token_hex(4)}", Ed25519PrivateKey.generate()
    registered = httpx.post(
        f"{chain.server.url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(key))},
        headers=_auth(token),
    )
    assert registered.status_code == 201, registered.text
    registered_long_ago(chain.server, sensor_id)
    return sensor_id, key


def _bind(
    chain: Chain, token: str, sensor_id: str, kind: str, target: str, since: str
) -> httpx.Response:
    return httpx.post(
        f"{chain.server.url}/api/v1/sensors/{sensor_id}/bindings",
        json={"kind": kind, "target": target, "valid_from": since},
        headers=_auth(token),
    )


def _bindings(chain: Chain, sensor_id: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{chain.server.url}/api/v1/sensors/{sensor_id}/bindings").json())


def _store_binding(chain: Chain, sensor_id: str, kind: BindingKind, target: str) -> None:
    """A binding as the store held it before the fix: six hours back, to anything."""
    with Session(chain.server.engine) as session:
        session.add(
            SensorBinding(
                sensor_id=sensor_id, kind=kind, target=target, valid_from=utcnow() - 6 * HOUR
            )
        )
        session.commit()


def _relay(
    chain: Chain,
    sensor_id: str,
    key: Ed25519PrivateKey,
    points: list[tuple[dt.datetime, float]],
    first_seq: int = 0,
) -> None:
    messages = [
        {
            "topic": reading_topic(sensor_id),
            "payload": sign_reading(
                {"sensor_id": sensor_id, "seq": seq, "time": format_time(t), "temperature_c": c},
                key,
            ).decode(),
        }
        for seq, (t, c) in enumerate(points, start=first_seq)
    ]
    relayed = httpx.post(
        f"{chain.server.url}/api/v1/readings", json=messages, headers=_auth(chain.hub.token)
    )
    assert relayed.json()["accepted"] == len(messages), relayed.text


def _warm(start: dt.datetime) -> list[tuple[dt.datetime, float]]:
    """24 readings at 25.5 °C over four hours from ``start`` (the reproduced attack)."""
    return [(start + i * 10 * MINUTE, 25.5) for i in range(24)]


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


def _at_hub(chain: Chain, count: int, since: dt.datetime) -> list[str]:
    """``count`` units received by the distributor at ``since``."""
    serials = [new_serial() for _ in range(count)]
    maker, hub = chain.maker, chain.hub
    stamp = format_time(since - HOUR)
    maker.api.capture(
        [
            maker.station.commission(GTIN, s, lot=LOT, expiry=EXPIRY, event_time=stamp)
            for s in serials
        ]
    )
    maker.api.capture(
        [
            maker.station.ship(GTIN, s, to=hub.gln, event_time=format_time(since - 30 * MINUTE))
            for s in serials
        ]
    )
    hub.api.capture([hub.station.receive(GTIN, s, event_time=format_time(since)) for s in serials])
    return serials


def _history(chain: Chain, serial: str) -> dict[str, Any]:
    answer = httpx.get(f"{chain.server.url}/api/v1/units/{GTIN}/{serial}/temperature")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _sensors_in(history: dict[str, Any]) -> set[str]:
    return {p["sensor_id"] for p in history["series"]}


def _cold_chain_alerts(chain: Chain, serials: list[str]) -> list[Alert]:
    """Run the cold-chain check, as ``medtrace alerts check`` does, and return the alerts
    naming any of ``serials``."""
    with Session(chain.server.engine) as session:
        check_cold_chain(session=session, now=utcnow(), default=POLICY, limits=LIMITS)
        alerts = session.exec(select(Alert)).all()
    units = {f"{GTIN}/{s}" for s in serials}
    return [a for a in alerts if units & set(a.evidence.get("units", []))]


def _quarantined(chain: Chain, serials: list[str]) -> list[str]:
    with Session(chain.server.engine) as session:
        rows = session.exec(select(Unit).where(Unit.gtin == GTIN)).all()
    return sorted(u.serial for u in rows if u.serial in serials and u.quarantined)


# --- finding 1: bindings -----------------------------------------------------------------------


def test_a_pharmacy_cannot_bind_its_sensor_to_the_distributors_site_or_shipment(
    chain: Chain,
) -> None:
    evil, _ = _register(chain, chain.pharmacy.token)
    case = new_sscc()
    maker = chain.maker
    serial = new_serial()
    maker.api.capture([maker.station.commission(GTIN, serial, lot=LOT, expiry=EXPIRY)])
    now = utcnow()
    maker.api.capture(
        [_signed(maker, "pack", now, sscc=case, children=[{"gtin": GTIN, "serial": serial}])]
    )
    maker.api.capture([_signed(maker, "ship", now, sscc=case, destination_gln=chain.hub.gln)])
    since = (now - 6 * HOUR).isoformat()

    at_site = _bind(chain, chain.pharmacy.token, evil, "place", chain.hub.gln, since)
    on_case = _bind(chain, chain.pharmacy.token, evil, "shipment", case, since)

    for refused in (at_site, on_case):
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"]["rule"] == "sensor.binding_not_authorised"
    assert _bindings(chain, evil) == []
    # its own place is its to bind
    assert (
        _bind(chain, chain.pharmacy.token, evil, "place", chain.pharmacy.gln, since).status_code
        == 201
    )


def test_an_unauthorised_binding_stored_before_the_fix_quarantines_nothing(chain: Chain) -> None:
    """The reproduced attack, with its binding already in the store: 24 signed readings at
    25.5 °C over four hours at the distributor's site raise no alert, quarantine nothing and
    show in no history; the distributor's own sensor there still counts."""
    serials = _at_hub(chain, 2, utcnow() - 7 * HOUR)
    evil, evil_key = _register(chain, chain.pharmacy.token)
    _store_binding(chain, evil, BindingKind.PLACE, chain.hub.gln)
    _relay(chain, evil, evil_key, _warm(utcnow() - 5 * HOUR))
    own, own_key = _register(chain, chain.hub.token)
    assert (
        _bind(
            chain, chain.hub.token, own, "place", chain.hub.gln, (utcnow() - 5 * HOUR).isoformat()
        ).status_code
        == 201
    )
    _relay(chain, own, own_key, [(utcnow() - 5 * HOUR + i * 20 * MINUTE, 5.0) for i in range(12)])

    alerts = _cold_chain_alerts(chain, serials)

    assert alerts == []
    assert _quarantined(chain, serials) == []
    for serial in serials:
        history = _history(chain, serial)
        assert evil not in _sensors_in(history) and own in _sensors_in(history)
        assert history["highest_c"] == 5.0
        verify = httpx.get(
            chain.server.url + digital_link_path(GTIN, serial, lot=LOT),
            headers={"Accept": "application/json"},
        ).json()
        assert verify["verdict"] == "genuine"
        assert evil not in {p["sensor_id"] for p in verify["temperature"]["series"]}
    shipped = chain.hub.api.capture(
        [chain.hub.station.ship(GTIN, serials[0], to=chain.pharmacy.gln)]
    )
    assert shipped[0]["leaf_index"] is not None


def test_an_unauthorised_shipment_binding_stored_before_the_fix_counts_for_nothing(
    chain: Chain,
) -> None:
    maker, hub = chain.maker, chain.hub
    left = utcnow() - 6 * HOUR
    serial, case = new_serial(), new_sscc()
    maker.api.capture(
        [
            maker.station.commission(
                GTIN, serial, lot=LOT, expiry=EXPIRY, event_time=format_time(left)
            ),
            _signed(maker, "pack", left, sscc=case, children=[{"gtin": GTIN, "serial": serial}]),
            _signed(maker, "ship", left + MINUTE, sscc=case, destination_gln=hub.gln),
        ]
    )
    evil, evil_key = _register(chain, chain.pharmacy.token)
    _store_binding(chain, evil, BindingKind.SHIPMENT, case)
    _relay(chain, evil, evil_key, _warm(left + 10 * MINUTE))
    truck, truck_key = _register(chain, hub.token)  # the destination's logger may travel with it
    assert (
        _bind(
            chain, hub.token, truck, "shipment", case, (left + 5 * MINUTE).isoformat()
        ).status_code
        == 201
    )
    _relay(
        chain, truck, truck_key, [(left + 10 * MINUTE + i * 20 * MINUTE, 4.0) for i in range(12)]
    )

    history = _history(chain, serial)

    assert _sensors_in(history) == {truck}
    assert _cold_chain_alerts(chain, [serial]) == []
    assert _quarantined(chain, [serial]) == []


def test_a_silent_sensor_is_reported_only_where_its_binding_is_authorised(chain: Chain) -> None:
    evil, _ = _register(chain, chain.pharmacy.token)
    _store_binding(chain, evil, BindingKind.PLACE, chain.hub.gln)
    own, _ = _register(chain, chain.hub.token)
    since = (utcnow() - 6 * HOUR).isoformat()
    assert _bind(chain, chain.hub.token, own, "place", chain.hub.gln, since).status_code == 201

    with Session(chain.server.engine) as session:
        check_cold_chain(
            session=session, now=utcnow(), default=POLICY, limits=replace(LIMITS, max_silence=HOUR)
        )
        silent = {a.evidence["sensor_id"] for a in session.exec(select(Alert)).all()}

    assert own in silent and evil not in silent


def test_a_grant_lets_a_sensor_count_from_the_grant_until_its_revocation(chain: Chain) -> None:
    hub, pharmacy = chain.hub, chain.pharmacy
    [serial] = _at_hub(chain, 1, utcnow() - 2 * HOUR)
    sensor, key = _register(chain, pharmacy.token)
    since = (utcnow() - HOUR).isoformat()
    assert _bind(chain, pharmacy.token, sensor, "place", hub.gln, since).status_code == 403
    url = f"{chain.server.url}/api/v1/sensor-grants"
    stolen = httpx.post(  # only who holds a place may grant it
        url,
        json={"grantee": chain.maker.gln, "kind": "place", "target": hub.gln},
        headers=_auth(pharmacy.token),
    )
    assert (stolen.status_code, stolen.json()["detail"]["rule"]) == (
        403,
        "sensor.grant_not_authorised",
    )

    _, regulator = new_participant(chain.server)
    every = httpx.get(url, headers=_auth(regulator)).json()
    assert not [g for g in every if g["grantee"] == chain.maker.gln], "nothing was recorded"
    granted = httpx.post(
        url,
        json={"grantee": pharmacy.gln, "kind": "place", "target": hub.gln},
        headers=_auth(hub.token),
    )
    assert granted.status_code == 201, granted.text
    grant = granted.json()
    assert (grant["grantor"], grant["grantee"], grant["revoked_at"]) == (
        hub.gln,
        pharmacy.gln,
        None,
    )
    assert grant in httpx.get(url, headers=_auth(pharmacy.token)).json()
    assert grant not in httpx.get(url, headers=_auth(chain.maker.token)).json()
    assert _bind(chain, pharmacy.token, sensor, "place", hub.gln, since).status_code == 201
    before = dt.datetime.fromisoformat(grant["granted_at"])
    time.sleep(1.0)
    _relay(
        chain,
        sensor,
        key,
        [
            (before - 30 * MINUTE, 5.0),
            *((before + i * 200 * dt.timedelta(milliseconds=1), 5.5) for i in range(1, 4)),
        ],
    )
    counted = [p["time"] for p in _history(chain, serial)["series"] if p["sensor_id"] == sensor]
    assert len(counted) == 3, "only the readings since the grant"

    refused = httpx.post(f"{url}/{grant['id']}/revoke", headers=_auth(pharmacy.token))
    assert (refused.status_code, refused.json()["detail"]["rule"]) == (403, "grant.not_yours")
    revoked = httpx.post(f"{url}/{grant['id']}/revoke", headers=_auth(hub.token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    end = dt.datetime.fromisoformat(revoked.json()["revoked_at"])
    time.sleep(1.0)
    _relay(chain, sensor, key, [(end + 300 * dt.timedelta(milliseconds=1), 5.5)], first_seq=4)
    after = [p["time"] for p in _history(chain, serial)["series"] if p["sensor_id"] == sensor]
    assert after == counted, "nothing counts after the revocation; what came before still does"
    rebind = _bind(chain, pharmacy.token, sensor, "place", hub.gln, format_time(utcnow()))
    assert (rebind.status_code, rebind.json()["detail"]["rule"]) == (
        403,
        "sensor.binding_not_authorised",
    )


@pytest.mark.parametrize(
    ("valid_from", "rule"),
    [
        ("0001-01-01T00:00:00+05:00", "binding.time_out_of_range"),
        ("0001-01-01T00:00:00Z", "binding.before_registration"),
        ("9999-12-31T23:59:59-05:00", "binding.time_out_of_range"),
        ("9999-01-01T00:00:00Z", "binding.in_future"),
        ("2000-01-01T00:00:00+14:00", "binding.before_registration"),
    ],
)
def test_a_valid_from_out_of_bounds_is_refused_with_422(
    chain: Chain, valid_from: str, rule: str
) -> None:
    sensor, _ = _register(chain, chain.hub.token)
    refused = _bind(chain, chain.hub.token, sensor, "place", chain.hub.gln, valid_from)
    assert (refused.status_code, refused.json()["detail"]["rule"]) == (422, rule), refused.text
    assert _bindings(chain, sensor) == []


def test_a_valid_from_before_registration_or_beyond_the_replay_window_is_refused(
    chain: Chain,
) -> None:
    hub = chain.hub
    fresh = f"new-{secrets.token_hex(4)}"
    httpx.post(
        f"{chain.server.url}/api/v1/sensors",
        json={"sensor_id": fresh, "public_key": b64(public_key_raw(Ed25519PrivateKey.generate()))},
        headers=_auth(hub.token),
    ).raise_for_status()
    early = _bind(chain, hub.token, fresh, "place", hub.gln, (utcnow() - HOUR).isoformat())
    assert (early.status_code, early.json()["detail"]["rule"]) == (
        422,
        "binding.before_registration",
    )
    old, _ = _register(chain, hub.token)  # registered a month ago; the replay window is a day
    stale = _bind(chain, hub.token, old, "place", hub.gln, (utcnow() - 25 * HOUR).isoformat())
    assert (stale.status_code, stale.json()["detail"]["rule"]) == (422, "binding.too_old")
    assert _bindings(chain, fresh) == _bindings(chain, old) == []


# --- finding 10: rejects -----------------------------------------------------------------------


def _forged(sensor_id: str, seq: int) -> dict[str, str]:
    reading = {
        "sensor_id": sensor_id,
        "seq": seq,
        "time": format_time(utcnow()),
        "temperature_c": 5.0,
    }
    payload = sign_reading(reading, Ed25519PrivateKey.generate()).decode()
    return {"topic": reading_topic(sensor_id), "payload": payload}


def _rejects(chain: Chain, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{chain.server.url}/api/v1/readings/rejects", params=params, headers=_auth(token)
    )


def test_refused_readings_are_shown_only_to_the_sensors_owner_and_the_regulator(
    chain: Chain,
) -> None:
    hub_sensor, _ = _register(chain, chain.hub.token)
    ghost = f"ghost-{secrets.token_hex(4)}"
    relayed = httpx.post(
        f"{chain.server.url}/api/v1/readings",
        json=[_forged(hub_sensor, 1), _forged(ghost, 1)],
        headers=_auth(chain.hub.token),
    )
    assert relayed.json()["rejected"] == 2
    _, regulator = new_participant(chain.server)

    mine = {r["sensor_id"] for r in _rejects(chain, chain.hub.token).json()}
    theirs = {r["sensor_id"] for r in _rejects(chain, chain.maker.token).json()}
    everyone = {r["sensor_id"] for r in _rejects(chain, regulator).json()}
    asked = _rejects(chain, chain.maker.token, sensor_id=hub_sensor)
    ghostly = _rejects(chain, chain.hub.token, sensor_id=ghost)

    assert hub_sensor in mine and ghost not in mine
    assert hub_sensor not in theirs and ghost not in theirs
    assert {hub_sensor, ghost} <= everyone
    for refused in (asked, ghostly):
        assert (refused.status_code, refused.json()["detail"]["rule"]) == (
            403,
            "readings.rejects_not_yours",
        )
    assert [r["sensor_id"] for r in _rejects(chain, regulator, sensor_id=ghost).json()] == [ghost]


def test_stored_rejects_are_capped_per_sensor_keeping_the_newest(chain: Chain) -> None:
    sensor, _ = _register(chain, chain.hub.token)
    ghosts = [f"ghost-{secrets.token_hex(4)}" for _ in range(3)]
    sent: dict[str, list[str]] = {}
    for start in range(0, 10, 5):
        flood = [
            _forged(name, seq) for name in [sensor, *ghosts] for seq in range(start, start + 5)
        ]
        for message in flood:
            sent.setdefault(message["topic"].split("/")[2], []).append(message["payload"])
        answer = httpx.post(
            f"{chain.server.url}/api/v1/readings", json=flood, headers=_auth(chain.hub.token)
        )
        assert answer.json()["rejected"] == len(flood)

    with Session(chain.server.engine) as session:
        kept = session.exec(
            select(ReadingReject.payload).where(ReadingReject.sensor_id == sensor)
        ).all()
        unregistered = session.exec(
            select(ReadingReject.payload).where(
                col(ReadingReject.sensor_id).not_in(select(Sensor.sensor_id))
            )
        ).all()
    assert sorted(kept) == sorted(sent[sensor][-REJECT_CAP:])
    assert sorted(unregistered) == sorted(sent[ghosts[-1]][-REJECT_CAP:]), (
        "the ids nobody registered share one allowance: the newest are kept"
    )


def _medtrace(*args: str, token: str, chain: Chain) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDTRACE_TOKEN": token, "MEDTRACE_PUBLIC_URL": chain.server.url}
    env["COLUMNS"] = "300"  # a table as wide as its rows
    return subprocess.run(
        [str(MEDTRACE), "sensor", *args], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_the_command_line_grants_lists_and_revokes(chain: Chain) -> None:
    hub, pharmacy = chain.hub, chain.pharmacy
    place = ("--kind", "place", "--target", hub.gln)

    refused = _medtrace("grant", hub.gln, *place, token=pharmacy.token, chain=chain)
    granted = _medtrace("grant", pharmacy.gln, *place, token=hub.token, chain=chain)
    listed = _medtrace("grants", token=pharmacy.token, chain=chain)

    assert refused.returncode == 1 and "sensor.grant_not_authorised" in refused.stderr
    assert granted.returncode == 0, granted.stderr
    found = re.search(r"granted #(\d+)", granted.stdout)
    assert found is not None
    grant_id = found[1]
    assert listed.returncode == 0 and hub.gln in listed.stdout and pharmacy.gln in listed.stdout
    not_theirs = _medtrace("revoke-grant", grant_id, token=pharmacy.token, chain=chain)
    assert not_theirs.returncode == 1 and "grant.not_yours" in not_theirs.stderr
    revoked = _medtrace("revoke-grant", grant_id, token=hub.token, chain=chain)
    assert revoked.returncode == 0, revoked.stderr
    [shown] = [
        g
        for g in httpx.get(
            f"{chain.server.url}/api/v1/sensor-grants", headers=_auth(hub.token)
        ).json()
        if g["id"] == int(grant_id)
    ]
    assert shown["revoked_at"] is not None
