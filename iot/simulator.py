"""Simulated temperature loggers, for the demo, the tests and the benchmarks.

Each simulated sensor has its own Ed25519 key and sequence counter and follows a profile of
a real logger:

* ``fridge``: a pharmacy fridge whose compressor cycles between 3 and 7 °C;
* ``truck``: a refrigerated truck, 4–6 °C with road noise;
* ``excursion``: a fridge whose door is left open for a while (up to ~12 °C), then recovers;
* ``freeze``: a fridge whose thermostat fails cold (down to about −3 °C);
* ``silent``: a fridge logger that stops sending (a flat battery).

The profiles run on a simulated clock, ``speed`` times faster than the wall clock, so a
30-minute compressor cycle can be watched in seconds; reading times are the wall clock.
Readings are published at QoS 1 on ``medtrace/sensors/{id}/readings``. While the broker is
away paho keeps every unacknowledged or unsent QoS 1 message in memory (no queue limit is set)
and sends it after reconnecting: that is the sensor's buffer.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from medtrace.protocol.mqtt import MqttVersion, new_client
from medtrace.protocol.readings import format_time, reading_topic, sign_reading

_CYCLE_S = 30 * 60.0  # a compressor cycle, in simulated seconds
_EVENT_AT_S = 10 * 60.0  # when an excursion, a freeze or a silence starts (simulated)
_EXCURSION_S = 15 * 60.0


class Profile(StrEnum):
    """The behaviour of a simulated logger."""

    FRIDGE = "fridge"
    TRUCK = "truck"
    EXCURSION = "excursion"
    FREEZE = "freeze"
    SILENT = "silent"


def profile_temperature(profile: Profile, elapsed_s: float, rng: random.Random) -> float | None:
    """The temperature a logger of ``profile`` reads ``elapsed_s`` simulated seconds after
    it started, or None when it sends nothing."""
    cycle = 5.0 + 2.0 * math.sin(2 * math.pi * elapsed_s / _CYCLE_S)
    noise = rng.gauss(0.0, 0.05)
    after = elapsed_s - _EVENT_AT_S
    if profile is Profile.TRUCK:
        return 5.0 + 0.8 * math.sin(2 * math.pi * elapsed_s / (_CYCLE_S * 1.3)) + rng.gauss(0, 0.3)
    if profile is Profile.EXCURSION and 0 <= after < _EXCURSION_S:
        # the door opens: the air warms towards the room, then the compressor catches up
        rise = 7.0 * math.sin(math.pi * after / _EXCURSION_S)
        return cycle + rise + noise
    if profile is Profile.FREEZE and after >= 0:
        return cycle - min(8.0, after / 60.0) + noise
    if profile is Profile.SILENT and after >= 0:
        return None
    return cycle + noise


@dataclass
class SimulatedSensor:
    """One logger: its id, key, profile and sequence counter.

    The counter starts at the start time in milliseconds, so a restarted simulator never
    reuses a sequence number (as long as it sends fewer than 1 000 readings per second).
    """

    sensor_id: str
    key: Ed25519PrivateKey
    profile: Profile
    seq: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    rng: random.Random = field(default_factory=random.Random)

    def reading(self, now: dt.datetime, elapsed_s: float) -> dict[str, Any] | None:
        """The next reading, or None when the profile is silent."""
        temperature = profile_temperature(self.profile, elapsed_s, self.rng)
        if temperature is None:
            return None
        self.seq += 1
        return {
            "sensor_id": self.sensor_id,
            "seq": self.seq,
            "time": format_time(now),
            "temperature_c": round(temperature, 2),
            "humidity_pct": round(45.0 + self.rng.gauss(0.0, 2.0), 1),
        }


class Fleet:
    """Simulated sensors publishing through one MQTT connection (a gateway), buffering
    while the broker is away."""

    def __init__(
        self,
        sensors: Sequence[SimulatedSensor],
        *,
        host: str,
        port: int,
        version: MqttVersion = MqttVersion.V5,
        client_id: str | None = None,
    ) -> None:
        self.sensors = list(sensors)
        self.published = 0
        self._client = new_client(
            client_id or f"medtrace-sim-{random.getrandbits(32):08x}", version, persistent=False
        )
        self._client.max_queued_messages_set(0)  # unlimited: the buffer while disconnected
        self._client.max_inflight_messages_set(1000)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._acked = 0  # PUBACKs received; paho calls on_publish once per QoS 1 message
        self._client.on_publish = self._on_publish
        self._host, self._port = host, port

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        _reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        self._acked += 1

    def start(self) -> None:
        """Connect in the background; publishing may begin at once (it is buffered)."""
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()

    def publish_round(self, now: dt.datetime, elapsed_s: float) -> int:
        """Take and publish one reading per sensor; return how many were published."""
        count = 0
        for sensor in self.sensors:
            reading = sensor.reading(now, elapsed_s)
            if reading is None:
                continue
            payload = sign_reading(reading, sensor.key)
            self._client.publish(reading_topic(sensor.sensor_id), payload, qos=1)
            count += 1
        self.published += count
        return count

    def run(
        self,
        *,
        rate: float,
        stop: threading.Event,
        duration: float | None = None,
        speed: float = 1.0,
    ) -> None:
        """Publish ``rate`` rounds per second until ``stop`` is set or ``duration`` passed."""
        start = time.monotonic()
        rounds = 0
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if duration is not None and elapsed >= duration:
                break
            self.publish_round(dt.datetime.now(dt.UTC), elapsed * speed)
            rounds += 1
            delay = start + rounds / rate - time.monotonic()
            if delay > 0:
                stop.wait(delay)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every message published so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._acked >= self.published:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
