"""Helpers for the IoT tests: sensors on a live server, a bridge process, a private broker."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, update
from sqlmodel import Session

from medtrace.demo import with_check_digit
from medtrace.iot.client import ReadingsClient
from medtrace.iot.simulator import Profile, SimulatedSensor
from medtrace.models import Role
from medtrace.models.iot import Reading, Sensor
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.protocol.readings import reading_topic, sign_reading
from medtrace.services.registry import create_participant

from .live import LiveServer, free_port

MEDTRACE = Path(sys.executable).parent / "medtrace"
MOSQUITTO_HOST, MOSQUITTO_PORT = "127.0.0.1", 1883


def broker_up(host: str = MOSQUITTO_HOST, port: int = MOSQUITTO_PORT) -> bool:
    """Whether an MQTT broker accepts a connection."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        client.connect(host, port, keepalive=5)
    except OSError:
        return False
    client.disconnect()
    return True


def new_sensors(
    server: LiveServer, token: str, prefix: str, count: int, profile: Profile = Profile.FRIDGE
) -> list[SimulatedSensor]:
    """``count`` simulated sensors registered on the server with the participant's token."""
    sensors = [
        SimulatedSensor(f"{prefix}-{i}", Ed25519PrivateKey.generate(), profile)
        for i in range(count)
    ]
    with ReadingsClient(server.url, token) as api:
        for sensor in sensors:
            api.register_sensor(sensor.sensor_id, b64(public_key_raw(sensor.key)))
    return sensors


def reading_count(server: LiveServer, prefix: str) -> int:
    """Readings stored for sensors whose id starts with ``prefix``."""
    with server.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(Reading)
                .where(Reading.sensor_id.startswith(prefix))  # type: ignore[attr-defined]
            ).scalar_one()
        )


def registered_long_ago(server: LiveServer, sensor_id: str, days: int = 30) -> None:
    """Make a sensor look registered ``days`` ago, as a logger in service for a while is:
    a binding (and its readings) may not start before the sensor's registration."""
    with server.engine.begin() as conn:
        conn.execute(
            update(Sensor)
            .where(Sensor.sensor_id == sensor_id)  # type: ignore[arg-type]
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
        )


def new_participant(server: LiveServer, role: Role = Role.REGULATOR) -> tuple[str, str]:
    """A new participant of ``role`` at a random GLN: (its GLN, its API token)."""
    gln = with_check_digit(f"95200{secrets.randbelow(10**7):07d}")
    with Session(server.engine) as session:
        created = create_participant(session=session, gln=gln, name=f"{role} {gln}", role=role)
    return gln, created.token


def poll(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll until ``predicate`` holds or ``timeout`` seconds passed; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until ``predicate`` holds; fail naming ``what`` after ``timeout`` seconds."""
    if not poll(predicate, timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class BridgeProcess:
    """``medtrace bridge`` as a real process."""

    process: subprocess.Popen[bytes]
    log_path: Path
    client_id: str
    port: int

    def log(self) -> str:
        """What the bridge printed."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no goodbye, no acks, no flush."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def forget_session(client_id: str, port: int = MOSQUITTO_PORT) -> None:
    """Make the broker drop a bridge's persistent session (MQTT 5: clean start, no expiry),
    so a finished test leaves no subscriber queueing messages on a shared broker."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(MOSQUITTO_HOST, port, keepalive=5, clean_start=True)
    client.loop_start()
    connected.wait(10)
    client.disconnect()
    client.loop_stop()


def start_bridge(
    server: LiveServer,
    token: str,
    *,
    client_id: str,
    share_group: str,
    log_path: Path,
    port: int = MOSQUITTO_PORT,
    batch_size: int = 200,
    version: str = "5",
    session_expiry: int = 60,
) -> BridgeProcess:
    """Start ``medtrace bridge`` against ``server`` and the broker on ``port``."""
    env = {**os.environ, "MEDTRACE_TOKEN": token, "MEDTRACE_PUBLIC_URL": server.url}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(MEDTRACE),
                "bridge",
                "--host",
                MOSQUITTO_HOST,
                "--port",
                str(port),
                "--client-id",
                client_id,
                "--share-group",
                share_group,
                "--batch-size",
                str(batch_size),
                "--mqtt-version",
                version,
                "--session-expiry",
                str(session_expiry),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return BridgeProcess(process, log_path, client_id, port)


@dataclass
class PrivateBroker:
    """A Mosquitto of our own, with persistence, that a test may stop and restart."""

    port: int
    config: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: broker_up(port=self.port), 10, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def private_broker(folder: Path) -> PrivateBroker:
    """A Mosquitto on a free port, persisting into ``folder``, with the settings medtrace
    ships for brokers (``medtrace/iot/mosquitto.conf``); configured, not yet started."""
    port = free_port()
    config = folder / "mosquitto.conf"
    # Run as root, Mosquitto switches to the user "mosquitto", who may not write into a test's
    # folder: without `user`, persistence silently fails and a restart forgets every session.
    shipped = (resources.files("medtrace.iot") / "mosquitto.conf").read_text()
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
        f"persistence true\npersistence_location {folder}/\nautosave_interval 1\n"
        f"log_dest file {folder}/mosquitto.log\nlog_type all\n{shipped}"
    )
    return PrivateBroker(port, config)


@dataclass(frozen=True)
class Poison:
    """A message that must become a reject with ``rule`` and leave everything else alone."""

    name: str
    topic: str
    payload: bytes
    rule: str


def poison_messages(sensor: SimulatedSensor, tag: str) -> list[Poison]:
    """The messages of issue 18 that stopped ingestion, and their kin, on ``sensor``'s topic
    (or a broken one), each made unique by ``tag`` where its shape allows, so its reject row
    is its own. Every one can travel through an MQTT broker."""
    topic = reading_topic(sensor.sensor_id)
    now = "2026-12-07T10:00:00.000Z"

    def signed(seq: int, time: str = now) -> bytes:
        reading = {"sensor_id": sensor.sensor_id, "seq": seq, "time": time, "temperature_c": 5}
        return sign_reading(reading, sensor.key)

    def raw(seq: int, rest: str) -> bytes:
        """A reading no encoder writes, around the fields ``rest``."""
        fields = f'"sensor_id":"{sensor.sensor_id}","seq":{seq},"time":"{now}",{rest}'
        outer = f'"sensor_id":"{sensor.sensor_id}","signature":"AA=="'
        return f'{{"reading":{{{fields}}},{outer}}}'.encode()

    unique = tag.encode()
    return [
        Poison("2000 nested [", topic, b"[" * 2000 + unique, "reading.malformed"),
        Poison("5000 bytes", topic, unique + b" " * 5000, "reading.too_large"),
        Poison("topic over 256", reading_topic(tag + "x" * 300), signed(900), "reading.bad_topic"),
        Poison("year 1 east", topic, signed(901, "0001-01-01T00:00:00+01:00"), "reading.malformed"),
        Poison(
            "year 9999 west", topic, signed(902, "9999-12-31T23:59:59-01:00"), "reading.malformed"
        ),
        Poison("not UTF-8", topic, b'{"' + unique + b'":"\xff\xfe"}', "reading.malformed"),
        Poison("not JSON", topic, b"{" + unique, "reading.malformed"),
        Poison("an array", topic, b'["' + unique + b'"]', "reading.malformed"),
        Poison("NaN", topic, raw(903, '"temperature_c":NaN'), "reading.malformed"),
        Poison("1e400", topic, raw(904, '"temperature_c":1e400'), "reading.malformed"),
        Poison(
            "2**64",
            topic,
            raw(905, f'"temperature_c":5,"humidity_pct":{2**64}'),
            "reading.malformed",
        ),
        Poison(
            "duplicate member",
            topic,
            raw(906, '"temperature_c":5,"temperature_c":50'),
            "reading.malformed",
        ),
        Poison("unicode topic", reading_topic(tag + "-\u00fc"), signed(907), "reading.bad_topic"),
        Poison("empty", topic, b"", "reading.malformed"),
    ]
