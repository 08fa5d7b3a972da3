"""Readings, rejects, bindings and temperature histories through a real server process,
on SQLite and PostgreSQL (no broker: these are the API the bridge relays into)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.iot.client import ReadingsClient
from medtrace.iot.errors import CaptureRejected
from medtrace.iot.simulator import Profile, SimulatedSensor
from medtrace.ledger import leaf_hash, verify_inclusion
from medtrace.models.iot import Reading, ReadingReject
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import (
    format_time,
    payload_digest,
    reading_topic,
    relayed,
    relayed_payload,
    sign_reading,
)
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.iot import poison_messages, registered_long_ago

JSON = {"Accept": "application/json"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _register(chain: Chain, token: str | None = None) -> tuple[str, Ed25519PrivateKey]:
    sensor_id = f"fridge-{secrets.token_hex(4)}"
    key = Ed25519PrivateKey.generate()
    response = httpx.post(
        f"{chain.server.url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(key))},
        headers=_auth(token or chain.hub.token),
    )
    assert response.status_code == 201, response.text
    return sensor_id, key


def _reading(sensor_id: str, seq: int, when: dt.datetime, celsius: float) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "seq": seq, "time": format_time(when), "temperature_c": celsius}


def _message(reading: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, str]:
    payload = sign_reading(reading, key)
    return {"topic": reading_topic(reading["sensor_id"]), "payload": payload.decode()}


def _relay(chain: Chain, messages: list[dict[str, str]]) -> httpx.Response:
    return httpx.post(
        f"{chain.server.url}/api/v1/readings", json=messages, headers=_auth(chain.hub.token)
    )


def test_a_reading_is_captured_once_and_provable(chain: Chain) -> None:
    sensor_id, key = _register(chain)
    message = _message(_reading(sensor_id, 1, dt.datetime.now(dt.UTC), 5.5), key)
    first = _relay(chain, [message])
    assert first.status_code == 201, first.text
    receipt = first.json()["results"][0]
    assert (receipt["status"], receipt["seq"]) == ("accepted", 1)
    leaves_before = chain.server.snapshot()[0]

    again = _relay(chain, [message, message])
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert {r["leaf_index"] for r in again.json()["results"]} == {receipt["leaf_index"]}
    assert chain.server.snapshot()[0] == leaves_before

    chain.server.wait_for_checkpoint(receipt["leaf_index"] + 1)
    proven = httpx.get(f"{chain.server.url}/api/v1/readings/{sensor_id}/1").json()
    leaf = base64.b64decode(proven["leaf"])
    assert leaf == message["payload"].encode()
    lines = proven["checkpoint"].splitlines()
    size, root = int(lines[1]), base64.b64decode(lines[2])
    proof = [bytes.fromhex(h) for h in proven["inclusion_proof"]]
    assert verify_inclusion(leaf_hash(leaf), proven["leaf_index"], size, proof, root)


def test_two_readings_with_the_same_key_in_one_batch_make_one_row(chain: Chain) -> None:
    sensor_id, key = _register(chain)
    message = _message(_reading(sensor_id, 5, dt.datetime.now(dt.UTC), 4.0), key)
    answer = _relay(chain, [message, message]).json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "duplicate"]
    assert answer["results"][0]["leaf_index"] == answer["results"][1]["leaf_index"] is not None


def test_forged_replayed_unknown_and_malformed_readings_are_kept_with_their_reason(
    chain: Chain,
) -> None:
    sensor_id, key = _register(chain)
    now = dt.datetime.now(dt.UTC)
    genuine = _message(_reading(sensor_id, 10, now, 5.0), key)
    assert _relay(chain, [genuine]).json()["accepted"] == 1
    leaves = chain.server.snapshot()[0]
    stranger = f"ghost-{secrets.token_hex(4)}"
    bad = [
        _message(_reading(sensor_id, 11, now, 5.0), Ed25519PrivateKey.generate()),
        _message(_reading(sensor_id, 10, now, 2.0), key),  # seq 10 used for another reading
        _message(_reading(stranger, 1, now, 5.0), Ed25519PrivateKey.generate()),
        {"topic": reading_topic(sensor_id), "payload": "{not json"},
        {"topic": reading_topic(stranger), "payload": genuine["payload"]},
    ]
    answer = _relay(chain, bad)
    assert answer.status_code == 200
    rules = [r["rule"] for r in answer.json()["results"]]
    assert rules == [
        "reading.signature_invalid",
        "reading.replayed_sequence",
        "reading.unknown_sensor",
        "reading.malformed",
        "reading.topic_mismatch",
    ]
    assert answer.json()["rejected"] == 5
    assert chain.server.snapshot()[0] == leaves

    stored = httpx.get(
        f"{chain.server.url}/api/v1/readings/rejects",
        params={"sensor_id": sensor_id},
        headers=_auth(chain.hub.token),
    ).json()
    by_rule = {r["rule"]: r for r in stored}
    assert {"reading.signature_invalid", "reading.replayed_sequence", "reading.malformed"} <= set(
        by_rule
    )
    assert by_rule["reading.replayed_sequence"]["seq"] == 10
    assert "already used" in by_rule["reading.replayed_sequence"]["message"]
    assert by_rule["reading.malformed"]["payload"] == "{not json"

    # a redelivered reject is not stored twice
    _relay(chain, bad[:1])
    again = httpx.get(
        f"{chain.server.url}/api/v1/readings/rejects",
        params={"sensor_id": sensor_id},
        headers=_auth(chain.hub.token),
    ).json()
    assert len(again) == len(stored)


def test_relaying_needs_a_token_and_a_sane_batch(chain: Chain) -> None:
    assert httpx.post(f"{chain.server.url}/api/v1/readings", json=[]).status_code == 401
    empty = _relay(chain, [])
    assert empty.status_code == 422 and empty.json()["detail"]["rule"] == "readings.empty"


@pytest.mark.parametrize(
    ("body", "status", "rule"),
    [
        (
            {"kind": "place", "target": "9521234000001", "valid_from": "2026-01-01T00:00:00Z"},
            422,
            "gs1.bad_check_digit",
        ),
        (
            {"kind": "shipment", "target": "123", "valid_from": "2026-01-01T00:00:00Z"},
            422,
            "gs1.sscc_format",
        ),
        (
            {"kind": "place", "target": "9521234000006", "valid_from": "2026-01-01T00:00:00"},
            422,
            "binding.naive_time",
        ),
    ],
)
def test_bad_bindings_are_refused(
    chain: Chain, body: dict[str, str], status: int, rule: str
) -> None:
    sensor_id, _ = _register(chain)
    response = httpx.post(
        f"{chain.server.url}/api/v1/sensors/{sensor_id}/bindings",
        json=body,
        headers=_auth(chain.hub.token),
    )
    assert (response.status_code, response.json()["detail"]["rule"]) == (status, rule)


def test_a_binding_without_valid_from_starts_when_the_server_receives_it(chain: Chain) -> None:
    sensor_id, _ = _register(chain)
    before = dt.datetime.now(dt.UTC)
    response = httpx.post(
        f"{chain.server.url}/api/v1/sensors/{sensor_id}/bindings",
        json={"kind": "place", "target": chain.hub.gln},
        headers=_auth(chain.hub.token),
    )
    after = dt.datetime.now(dt.UTC)
    assert response.status_code == 201, response.text
    assert before <= dt.datetime.fromisoformat(response.json()["valid_from"]) <= after


def test_only_the_owner_binds_a_sensor(chain: Chain) -> None:
    sensor_id, _ = _register(chain)
    body = {"kind": "place", "target": chain.maker.gln, "valid_from": "2026-01-01T00:00:00Z"}
    url = f"{chain.server.url}/api/v1/sensors/{sensor_id}/bindings"
    refused = httpx.post(url, json=body, headers=_auth(chain.maker.token))
    assert (refused.status_code, refused.json()["detail"]["rule"]) == (403, "sensor.not_yours")
    unknown = httpx.post(
        url.replace(sensor_id, "nobody"), json=body, headers=_auth(chain.hub.token)
    )
    assert unknown.status_code == 404


def _bind(chain: Chain, token: str, sensor_id: str, gln: str, since: dt.datetime) -> None:
    response = httpx.post(
        f"{chain.server.url}/api/v1/sensors/{sensor_id}/bindings",
        json={"kind": "place", "target": gln, "valid_from": since.isoformat()},
        headers=_auth(token),
    )
    assert response.status_code == 201, response.text


def test_a_units_temperature_history_follows_it_across_places_with_its_gaps(
    chain: Chain,
) -> None:
    minute = dt.timedelta(minutes=1)
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - 180 * minute
    serial = new_serial()
    maker, hub = chain.maker, chain.hub
    maker.api.capture(
        [maker.station.commission(GTIN, serial, lot=LOT, expiry=EXPIRY, event_time=format_time(t0))]
    )
    maker.api.capture(
        [maker.station.ship(GTIN, serial, to=hub.gln, event_time=format_time(t0 + 30 * minute))]
    )
    hub.api.capture([hub.station.receive(GTIN, serial, event_time=format_time(t0 + 90 * minute))])

    at_maker, maker_key = _register(chain, maker.token)
    at_hub, hub_key = _register(chain, hub.token)
    registered_long_ago(chain.server, at_maker)
    registered_long_ago(chain.server, at_hub)
    _bind(chain, maker.token, at_maker, maker.gln, t0 - 60 * minute)
    _bind(chain, hub.token, at_hub, hub.gln, t0 + 100 * minute)
    messages = [
        _message(_reading(at_maker, 100 + m, t0 + m * minute, 9.5 if m == 10 else 5.0), maker_key)
        for m in range(-30, 65, 5)
    ] + [_message(_reading(at_hub, m, t0 + m * minute, 4.0), hub_key) for m in range(100, 155, 5)]
    assert _relay(chain, messages).json()["accepted"] == len(messages)

    history = httpx.get(f"{chain.server.url}/api/v1/units/{GTIN}/{serial}/temperature").json()
    series = [(p["sensor_id"], p["celsius"], p["where"]) for p in history["series"]]
    assert series == [(at_maker, 9.5 if m == 10 else 5.0, maker.gln) for m in range(0, 30, 5)] + [
        (at_hub, 4.0, hub.gln) for m in range(100, 155, 5)
    ]
    assert history["band"]["min_c"] == 2.0 and history["band"]["max_c"] == 8.0
    assert "default" in history["band"]["source"]
    assert history["out_of_band"] == 1
    assert (history["lowest_c"], history["highest_c"]) == (4.0, 9.5)
    gaps = [
        (dt.datetime.fromisoformat(g["start"]) - t0, g["where"], g["reason"])
        for g in history["gaps"]
    ]
    assert gaps == [
        (30 * minute, "in transit", "no sensor travelled with it"),
        (90 * minute, hub.gln, f"no sensor bound to {hub.gln}"),
        (150 * minute, hub.gln, "the sensors bound there sent no readings"),
    ]

    verify = httpx.get(
        chain.server.url + digital_link_path(GTIN, serial, lot=LOT), headers=JSON
    ).json()
    shown = verify["temperature"]
    assert (shown["series"], shown["band"]) == (history["series"], history["band"])
    assert shown["gaps"] == history["gaps"]
    assert history["gaps"][-1]["end"] is None, "still at the hub, unread since: an open gap"
    assert all(g["end"] is not None for g in history["gaps"][:-1])
    assert verify["events"] and verify["verdict"] == "genuine"


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


def test_a_unit_in_a_shipped_case_is_covered_by_the_sensor_bound_to_its_sscc(
    chain: Chain,
) -> None:
    minute = dt.timedelta(minutes=1)
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - 120 * minute
    serial = new_serial()
    case = with_check_digit("39521234" + f"{secrets.randbelow(10**9):09d}")
    maker, hub = chain.maker, chain.hub
    maker.api.capture(
        [maker.station.commission(GTIN, serial, lot=LOT, expiry=EXPIRY, event_time=format_time(t0))]
    )
    pack = [{"gtin": GTIN, "serial": serial}]
    maker.api.capture([_signed(maker, "pack", t0 + 5 * minute, sscc=case, children=pack)])
    maker.api.capture(
        [_signed(maker, "ship", t0 + 30 * minute, sscc=case, destination_gln=hub.gln)]
    )
    hub.api.capture([_signed(hub, "receive", t0 + 90 * minute, sscc=case)])

    truck, key = _register(chain, maker.token)
    registered_long_ago(chain.server, truck)
    bound = httpx.post(
        f"{chain.server.url}/api/v1/sensors/{truck}/bindings",
        json={"kind": "shipment", "target": case, "valid_from": (t0 + 20 * minute).isoformat()},
        headers=_auth(maker.token),
    )
    assert bound.status_code == 201, bound.text
    messages = [_message(_reading(truck, m, t0 + m * minute, 4.5), key) for m in range(20, 100, 10)]
    assert _relay(chain, messages).json()["accepted"] == len(messages)

    history = httpx.get(f"{chain.server.url}/api/v1/units/{GTIN}/{serial}/temperature").json()
    in_truck = [  # (the maker's site may hold other tests' sensors: only the case is ours)
        (dt.datetime.fromisoformat(p["time"]) - t0, p["sensor_id"])
        for p in history["series"]
        if p["where"] == case
    ]
    assert in_truck == [(m * minute, truck) for m in range(30, 90, 10)]
    assert all(g["where"] != "in transit" and g["where"] != case for g in history["gaps"])


def test_garbage_from_the_broker_is_rejected_and_kept_never_a_server_error(chain: Chain) -> None:
    """Found by the OpenAPI fuzzer: a NUL (PostgreSQL text cannot hold it) or a topic naming
    no valid sensor id must be stored as a reject; a lone surrogate is no UTF-8 at all."""
    garbage = [
        {"topic": "medtrace/sensors/a\u0000b/readings", "payload": "{\u0000}"},
        {"topic": f"medtrace/sensors/{'x' * 200}/readings", "payload": "not json"},
    ]

    answer = _relay(chain, garbage)

    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["rejected", "rejected"]
    assert [r["sensor_id"] for r in answer.json()["results"]] == [None, None]
    surrogates = httpx.post(  # no UTF-8 at all: one message's fault, not the batch's
        f"{chain.server.url}/api/v1/readings",
        content=b'[{"topic": "t\\udfff", "payload": "\\ud800"}, {"topic": "t", "payload": ""}]',
        headers={**_auth(chain.hub.token), "Content-Type": "application/json"},
    )
    assert surrogates.status_code == 200, surrogates.text
    assert [r["rule"] for r in surrogates.json()["results"]] == ["reading.bad_topic"] * 2


def _stored(chain: Chain, sensor_id: str) -> tuple[list[int], dict[str, str]]:
    """A sensor's stored sequence numbers, and every reject's rule by its digest."""
    with chain.server.engine.connect() as conn:
        seqs = conn.execute(
            select(Reading.seq).where(Reading.sensor_id == sensor_id).order_by(Reading.seq)
        )
        rejects = conn.execute(select(ReadingReject.digest, ReadingReject.rule))
        return [int(seq) for (seq,) in seqs], {digest: rule for digest, rule in rejects}


def test_poison_messages_between_good_ones_are_each_rejected_and_the_rest_captured(
    chain: Chain,
) -> None:
    """Issue 18: one message (2 000 nested ``[``, 5 000 bytes, a topic over 256 characters,
    a time outside UTC's years, ...) once failed its whole batch with a 500 or a 422. Each
    is now a reject with its rule, through the bridge's own capture call, and the good
    readings around it are captured; relayed again, nothing changes."""
    sensor_id, key = _register(chain)
    sensor = SimulatedSensor(sensor_id, key, Profile.FRIDGE)
    poison = poison_messages(sensor, sensor_id)
    now = dt.datetime.now(dt.UTC)
    good = [sign_reading(_reading(sensor_id, seq, now, 5.0), key) for seq in range(len(poison))]
    batch: list[tuple[str, bytes]] = []
    for payload, bad in zip(good, poison, strict=True):
        batch += [(reading_topic(sensor_id), payload), (bad.topic, bad.payload)]
    leaves = chain.server.snapshot()[0]

    with ReadingsClient(chain.server.url, chain.hub.token) as api:
        answer = api.relay(batch)
        again = api.relay(batch)

    statuses = [(r["status"], r["rule"]) for r in answer["results"]]
    assert statuses[0::2] == [("accepted", None)] * len(good)
    assert statuses[1::2] == [("rejected", bad.rule) for bad in poison]
    assert (answer["accepted"], answer["rejected"]) == (len(good), len(poison))
    assert chain.server.snapshot()[0] == leaves + len(good)  # a leaf per good reading only
    seqs, rejects = _stored(chain, sensor_id)
    assert seqs == list(range(len(good)))
    for bad in poison:  # rejects are kept once per bytes: the empty one may be another's
        stored = rejects[payload_digest(relayed_payload(relayed(bad.topic, bad.payload)[1]))]
        assert stored == bad.rule or not bad.payload, bad.name
    assert (again["accepted"], again["duplicates"]) == (0, len(good))
    assert _stored(chain, sensor_id) == (seqs, rejects)
    assert chain.server.snapshot()[0] == leaves + len(good)


def test_a_full_batch_from_one_sensor_is_judged_message_by_message(chain: Chain) -> None:
    """The largest batch a request may carry, all from one sensor, a few of them poison; one
    more message refuses the request as a whole, before anything is written."""
    sensor_id, key = _register(chain)
    sensor = SimulatedSensor(sensor_id, key, Profile.FRIDGE)
    poison = poison_messages(sensor, sensor_id)[:4]
    now = dt.datetime.now(dt.UTC)
    batch = [(bad.topic, bad.payload) for bad in poison] + [
        (reading_topic(sensor_id), sign_reading(_reading(sensor_id, seq, now, 4.0), key))
        for seq in range(1_000 - len(poison))
    ]
    leaves = chain.server.snapshot()[0]
    with ReadingsClient(chain.server.url, chain.hub.token) as api:
        with pytest.raises(CaptureRejected) as refused:
            api.relay([*batch, batch[-1]])
        assert (refused.value.status, refused.value.rule) == (422, "readings.batch_too_large")
        assert chain.server.snapshot()[0] == leaves
        answer = api.relay(batch)
    assert (answer["accepted"], answer["rejected"]) == (len(batch) - len(poison), len(poison))
    assert _stored(chain, sensor_id)[0] == list(range(len(batch) - len(poison)))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    messages=st.lists(
        st.tuples(
            st.text(max_size=40).map(reading_topic) | st.text(max_size=300),
            st.binary(max_size=300) | st.binary(min_size=4090, max_size=4200),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_messages_get_a_verdict_each_and_never_a_server_error(
    chain: Chain, messages: list[tuple[str, bytes]]
) -> None:
    """Whatever a broker delivers, the bridge's capture call answers each message; a 5xx
    would be ``CaptureUnavailable``, which the bridge retries for ever."""
    leaves = chain.server.snapshot()[0]
    with ReadingsClient(chain.server.url, chain.hub.token) as api:
        answer = api.relay(messages)
    assert len(answer["results"]) == len(messages)
    assert answer["rejected"] == len(messages)  # no sensor of theirs is registered
    assert all(r["rule"].startswith("reading.") for r in answer["results"])
    assert chain.server.snapshot()[0] == leaves
