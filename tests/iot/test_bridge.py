"""The bridge against a real Mosquitto and a real server: exactly once through crashes.

The bridge runs as a real ``medtrace bridge`` process; sensors publish through paho at QoS 1.
Each test uses its own sensors, client id and shared-subscription group, so a persistent
session left on the shared broker by another run can never take a share of its messages.
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from medtrace.iot.simulator import Fleet, SimulatedSensor
from medtrace.models.iot import Reading, ReadingReject
from medtrace.protocol.mqtt import MqttVersion
from medtrace.protocol.readings import (
    format_time,
    payload_digest,
    reading_topic,
    relayed,
    relayed_payload,
    sign_reading,
)
from support.chain import Chain
from support.iot import (
    MOSQUITTO_HOST,
    MOSQUITTO_PORT,
    BridgeProcess,
    broker_up,
    forget_session,
    new_participant,
    new_sensors,
    poison_messages,
    poll,
    private_broker,
    reading_count,
    start_bridge,
    wait_until,
)
from support.live import LiveServer, start_server

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _mosquitto() -> None:
    if not broker_up():
        pytest.fail(
            f"no MQTT broker at {MOSQUITTO_HOST}:{MOSQUITTO_PORT}: start it with "
            "`mosquitto -d -c /etc/mosquitto/mosquitto.conf`"
        )


@pytest.fixture
def tag() -> str:
    """A name no other run uses: sensor prefix, client id and share group derive from it."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def bridges(chain: Chain, tag: str, tmp_path: Path) -> Iterator[list[BridgeProcess]]:
    """Bridge processes started by a test, stopped after it."""
    started: list[BridgeProcess] = []
    yield started
    for bridge in started:
        bridge.stop()
    for client_id in {b.client_id for b in started if b.port == MOSQUITTO_PORT}:
        forget_session(client_id)


def _bridge(
    chain: Chain, tag: str, tmp_path: Path, port: int = MOSQUITTO_PORT, *, shared: bool = False
) -> BridgeProcess:
    bridge = start_bridge(
        chain.server,
        chain.hub.token,
        client_id=f"bridge-{tag}",
        share_group=tag if shared else "",
        log_path=tmp_path / "bridge.log",
        port=port,
    )
    wait_until(lambda: "relaying" in bridge.log(), 20, "the bridge to subscribe")
    return bridge


def _stored_seqs(server: LiveServer, sensor_id: str) -> list[int]:
    with server.engine.connect() as conn:
        rows = conn.execute(
            select(Reading.seq).where(Reading.sensor_id == sensor_id).order_by(Reading.seq)
        )
        return [int(seq) for (seq,) in rows]


def _run_fleet(
    sensors: list[SimulatedSensor], port: int, rate: float, duration: float
) -> tuple[Fleet, threading.Thread, dict[str, int]]:
    """Start publishing in a thread; return the fleet, the thread and each first seq."""
    firsts = {s.sensor_id: s.seq + 1 for s in sensors}
    fleet = Fleet(sensors, host=MOSQUITTO_HOST, port=port, version=MqttVersion.V5)
    fleet.start()
    thread = threading.Thread(
        target=fleet.run, kwargs={"rate": rate, "stop": threading.Event(), "duration": duration}
    )
    thread.start()
    return fleet, thread, firsts


def _assert_exactly_once(
    server: LiveServer,
    fleet: Fleet,
    firsts: dict[str, int],
    leaves: int,
    bridges: list[BridgeProcess],
) -> None:
    """Once the readings settle, every sequence number each sensor sent is stored once, with
    one leaf each."""
    tag = fleet.sensors[0].sensor_id.rsplit("-", 1)[0]
    poll(lambda: reading_count(server, tag) >= fleet.published, 60)
    logs = "\n".join(b.log()[-2000:] for b in bridges)
    total = 0
    for sensor in fleet.sensors:
        expected = range(firsts[sensor.sensor_id], sensor.seq + 1)
        stored = _stored_seqs(server, sensor.sensor_id)
        missing = sorted(set(expected) - set(stored))
        assert not missing, f"{sensor.sensor_id} lost {len(missing)}: {missing[:10]}\n{logs}"
        assert stored == list(expected)
        total += len(expected)
    assert server.snapshot()[0] - leaves == total  # no leaf without its reading, none twice


def test_forged_replayed_and_unknown_readings_arrive_as_rejects(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    (sensor,) = new_sensors(chain.server, chain.hub.token, tag, 1)
    bridges.append(_bridge(chain, tag, tmp_path))
    now = format_time(dt.datetime.now(dt.UTC))

    def reading(sensor_id: str, seq: int, celsius: float) -> dict[str, object]:
        return {"sensor_id": sensor_id, "seq": seq, "time": now, "temperature_c": celsius}

    stranger = f"{tag}-ghost"
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
    publisher.loop_start()
    try:
        messages = [
            (sensor.sensor_id, sign_reading(reading(sensor.sensor_id, 1, 5.0), sensor.key)),
            (sensor.sensor_id, sign_reading(reading(sensor.sensor_id, 1, 3.0), sensor.key)),
            (
                sensor.sensor_id,
                sign_reading(reading(sensor.sensor_id, 2, 5.0), Ed25519PrivateKey.generate()),
            ),
            (stranger, sign_reading(reading(stranger, 1, 5.0), Ed25519PrivateKey.generate())),
        ]
        for sensor_id, payload in messages:
            publisher.publish(reading_topic(sensor_id), payload, qos=1).wait_for_publish(10)
            time.sleep(0.3)  # keep their order across batches: the replay must come second
    finally:
        publisher.disconnect()
        publisher.loop_stop()

    _, regulator = new_participant(chain.server)  # only it sees an unregistered id's rejects

    def rejects() -> dict[str, str | None]:
        answer = httpx.get(
            f"{chain.server.url}/api/v1/readings/rejects",
            headers={"Authorization": f"Bearer {regulator}"},
        ).json()
        return {
            r["rule"]: r["sensor_id"]
            for r in answer
            if r["sensor_id"] in {sensor.sensor_id, stranger}
        }

    wait_until(lambda: len(rejects()) == 3, 20, "three rejects")
    assert rejects() == {
        "reading.replayed_sequence": sensor.sensor_id,
        "reading.signature_invalid": sensor.sensor_id,
        "reading.unknown_sensor": stranger,
    }
    assert _stored_seqs(chain.server, sensor.sensor_id) == [1]


def test_a_bridge_killed_mid_run_loses_and_doubles_nothing(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    sensors = new_sensors(chain.server, chain.hub.token, tag, 5)
    leaves = chain.server.snapshot()[0]
    bridges.append(_bridge(chain, tag, tmp_path, shared=True))
    # 100 readings/s: the system broker keeps at most 1 000 messages (its default
    # max_queued_messages) for the session of a bridge while it is dead
    fleet, thread, firsts = _run_fleet(sensors, MOSQUITTO_PORT, rate=20, duration=8)
    wait_until(lambda: reading_count(chain.server, tag) > 200, 20, "readings to flow")
    bridges[0].kill()
    killed_at = reading_count(chain.server, tag)
    time.sleep(1)
    bridges.append(_bridge(chain, tag, tmp_path, shared=True))
    thread.join()
    assert fleet.flush(30)
    fleet.stop()
    _assert_exactly_once(chain.server, fleet, firsts, leaves, bridges)
    assert 0 < killed_at < fleet.published  # the kill happened mid-run


def test_a_broker_restart_mid_run_loses_nothing(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    broker = private_broker(tmp_path)
    broker.start()
    try:
        sensors = new_sensors(chain.server, chain.hub.token, tag, 5)
        leaves = chain.server.snapshot()[0]
        bridges.append(_bridge(chain, tag, tmp_path, port=broker.port))
        fleet, thread, firsts = _run_fleet(sensors, broker.port, rate=60, duration=6)
        wait_until(lambda: reading_count(chain.server, tag) > 300, 20, "readings to flow")
        broker.stop()
        stopped_at = reading_count(chain.server, tag)
        time.sleep(1.5)  # the sensors buffer meanwhile
        broker.start()
        thread.join()
        assert fleet.flush(30)
        fleet.stop()
        _assert_exactly_once(chain.server, fleet, firsts, leaves, bridges)
        assert 0 < stopped_at < fleet.published
    finally:
        for bridge in bridges:
            bridge.stop()
        broker.stop()


def test_bridges_in_one_share_group_split_the_readings_exactly_once(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    sensors = new_sensors(chain.server, chain.hub.token, tag, 4)
    leaves = chain.server.snapshot()[0]
    for name in ("a", "b"):
        bridge = start_bridge(
            chain.server,
            chain.hub.token,
            client_id=f"bridge-{tag}-{name}",
            share_group=tag,
            log_path=tmp_path / f"bridge-{name}.log",
        )
        wait_until(lambda b=bridge: "relaying" in b.log(), 20, "a bridge to subscribe")
        bridges.append(bridge)
    fleet, thread, firsts = _run_fleet(sensors, MOSQUITTO_PORT, rate=25, duration=4)
    thread.join()
    assert fleet.flush(30)
    fleet.stop()
    _assert_exactly_once(chain.server, fleet, firsts, leaves, bridges)
    relayed = []
    for bridge in bridges:
        assert bridge.stop() == 0
        relayed.append(int(bridge.log().rsplit("relayed ", 1)[1].split()[0]))
    assert sum(relayed) == fleet.published and min(relayed) > 0, relayed


def _mosquitto_pub(
    topic: str, payload: bytes, folder: Path, *, retain: bool = False, port: int = MOSQUITTO_PORT
) -> None:
    """Publish raw bytes at QoS 1 with the broker's own client, as any device could."""
    command = ["mosquitto_pub", "-h", MOSQUITTO_HOST, "-p", str(port), "-V", "5"]
    command += ["-q", "1", "-t", topic, *(["-r"] if retain else [])]
    if payload:
        (folder / "payload").write_bytes(payload)
        command += ["-f", str(folder / "payload")]
    else:
        command.append("-n")
    subprocess.run(command, check=True, timeout=10, capture_output=True)


def _reject_rules(server: LiveServer) -> dict[str, str]:
    with server.engine.connect() as conn:
        return dict(conn.execute(select(ReadingReject.digest, ReadingReject.rule)).all())


def test_poison_messages_between_good_ones_never_stop_the_bridge(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    """Issue 18: one message (2 000 nested ``[``, 5 000 bytes, a topic over 256 characters,
    a time outside UTC's years, ...) once made the bridge retry a batch for ever or exit and
    meet the message again on restart. Published between good readings, retained or not,
    each now becomes a reject with its rule, every good reading is captured, and the one
    bridge process runs on."""
    (sensor,) = new_sensors(chain.server, chain.hub.token, tag, 1)
    poison = poison_messages(sensor, tag)
    retained = poison[0]  # waiting on the broker before the bridge subscribes
    when = format_time(dt.datetime.now(dt.UTC))
    good = [
        sign_reading(
            {"sensor_id": sensor.sensor_id, "seq": seq, "time": when, "temperature_c": 5.0},
            sensor.key,
        )
        for seq in range(len(poison))
    ]
    try:
        _mosquitto_pub(retained.topic, retained.payload, tmp_path, retain=True)
        bridges.append(_bridge(chain, tag, tmp_path))
        for payload, bad in zip(good, [None, *poison[1:]], strict=True):
            if bad is not None:
                _mosquitto_pub(bad.topic, bad.payload, tmp_path)
            _mosquitto_pub(reading_topic(sensor.sensor_id), payload, tmp_path)
        expected = list(range(len(good)))
        wait_until(
            lambda: _stored_seqs(chain.server, sensor.sensor_id) == expected,
            30,
            "every good reading",
        )
        digests = {
            payload_digest(relayed_payload(relayed(bad.topic, bad.payload)[1])): bad
            for bad in poison
        }
        wait_until(lambda: digests.keys() <= _reject_rules(chain.server).keys(), 30, "rejects")
    finally:
        _mosquitto_pub(retained.topic, b"", tmp_path, retain=True)  # clear it off the broker
    rules = _reject_rules(chain.server)
    for digest, bad in digests.items():  # rejects are kept once per bytes: "" may be another's
        assert rules[digest] == bad.rule or not bad.payload, bad.name
    bridge = bridges[0]
    assert bridge.process.poll() is None, bridge.log()
    assert bridge.stop() == 0
    assert "Refused by the server" not in bridge.log()


def test_a_body_limit_below_the_batches_halves_them_and_settles_a_lone_message(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    """An API behind a smaller body limit than the bridge's batches (nginx's default is
    1 MB, a batch of 500 poison messages 2 MB) once made the bridge exit on the 413 and
    meet the batch again on restart. Now the bridge halves a refused batch until each part
    is taken, and a message refused alone is that message's verdict: logged, acknowledged,
    and ingestion goes on."""
    (sensor,) = new_sensors(chain.server, chain.hub.token, tag, 1)
    replica = start_server(  # a second API on the same store, taking 4 000-byte bodies
        database_url=chain.server.database_url,
        data_dir=chain.server.data_dir,
        env={"MEDTRACE_MAX_BODY_BYTES": "4000", "MEDTRACE_RUN_SEQUENCER": "false"},
    )
    try:
        bridge = start_bridge(
            replica,
            chain.hub.token,
            client_id=f"bridge-{tag}",
            share_group=tag,
            log_path=tmp_path / "bridge.log",
        )
        bridges.append(bridge)
        wait_until(lambda: "relaying" in bridge.log(), 20, "the bridge to subscribe")
        when = format_time(dt.datetime.now(dt.UTC))
        readings = [
            {"sensor_id": sensor.sensor_id, "seq": seq, "time": when, "temperature_c": 5.0}
            for seq in range(40)
        ]
        (too_large,) = [p for p in poison_messages(sensor, tag) if p.name == "5000 bytes"]
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
        publisher.loop_start()
        try:
            sent = [
                publisher.publish(reading_topic(sensor.sensor_id), sign_reading(r, sensor.key), 1)
                for r in readings[:20]
            ]
            sent.append(publisher.publish(too_large.topic, too_large.payload, qos=1))
            sent += [
                publisher.publish(reading_topic(sensor.sensor_id), sign_reading(r, sensor.key), 1)
                for r in readings[20:]
            ]
            for info in sent:
                info.wait_for_publish(10)
        finally:
            publisher.disconnect()
            publisher.loop_stop()
        expected = list(range(len(readings)))
        wait_until(
            lambda: _stored_seqs(chain.server, sensor.sensor_id) == expected,
            30,
            "every good reading",
        )
        wait_until(lambda: "refused a message" in bridge.log(), 10, "the lone refusal")
        assert "halving" in bridge.log()
        assert bridge.process.poll() is None, bridge.log()
        assert bridge.stop() == 0
    finally:
        replica.stop()


def test_a_retained_message_is_relayed_once_not_on_every_reconnection(
    chain: Chain, tag: str, tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    """A retained message reaches a bridge when its subscription is new; a bridge resuming
    its persistent session must not be sent it again (it would come back on every
    reconnection as one more duplicate or known reject)."""
    broker = private_broker(tmp_path)  # no other test's messages: the counts are exact
    broker.start()
    try:
        (sensor,) = new_sensors(chain.server, chain.hub.token, tag, 1)
        when = format_time(dt.datetime.now(dt.UTC))
        reading = {"sensor_id": sensor.sensor_id, "seq": 0, "time": when, "temperature_c": 4.0}
        topic = reading_topic(sensor.sensor_id)
        _mosquitto_pub(
            topic, sign_reading(reading, sensor.key), tmp_path, retain=True, port=broker.port
        )
        for run in ("first", "resumed"):
            bridge = start_bridge(
                chain.server,
                chain.hub.token,
                client_id=f"bridge-{tag}",
                share_group="",
                log_path=tmp_path / f"bridge-{run}.log",
                port=broker.port,
            )
            bridges.append(bridge)
            wait_until(lambda b=bridge: "relaying" in b.log(), 20, "the bridge to subscribe")
            if run == "first":
                wait_until(
                    lambda: _stored_seqs(chain.server, sensor.sensor_id) == [0], 20, "the reading"
                )
            else:
                time.sleep(2)  # what the broker would send on subscribing has arrived by now
            assert bridge.stop() == 0
        relayed = [int(b.log().rsplit("relayed ", 1)[1].split()[0]) for b in bridges]
        assert relayed == [1, 0]
    finally:
        broker.stop()
