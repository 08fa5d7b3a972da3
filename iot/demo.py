"""The demo's temperature loggers: an embedded broker, one simulated logger per place, and a
bridge, all in the demo's process, so its verify pages show temperature histories.

Each participant registers its logger with its own token and binds it to its GLN; the
loggers publish signed readings over MQTT 3.1.1 to the embedded amqtt broker while the custody
walk runs, and the bridge relays them into the capture API like any production bridge.
The profiles run 1 200 times faster than the wall clock, so a compressor cycle, and the
distributor's door-open excursion, show within the seconds the demo takes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medtrace.protocol.keys import b64, public_key_raw, write_key_file
from medtrace.protocol.mqtt import MqttVersion

from .bridge import Bridge, BridgeConfig
from .client import ReadingsClient
from .embedded import EmbeddedBroker
from .simulator import Fleet, Profile, SimulatedSensor

_RATE = 50.0  # readings per second per logger
_SPEED = 1200.0


@dataclass(frozen=True)
class DemoLogger:
    """A logger of the demo: who operates it, where it hangs, how it behaves."""

    sensor_id: str
    token: str
    gln: str
    profile: Profile


# The distributor's cold room has a door left open; the other places keep their band.
PROFILE_BY_ROLE = {"distributor": Profile.EXCURSION}


class DemoSensors:
    """Broker, loggers and bridge of the demo; ``start`` before the walk, ``finish`` after."""

    def __init__(
        self, base_url: str, key_dir: Path, loggers: Sequence[DemoLogger], relay_token: str
    ) -> None:
        self._base_url = base_url
        self._loggers = list(loggers)
        self._sensors = [
            SimulatedSensor(
                lg.sensor_id, write_key_file(key_dir / f"{lg.sensor_id}.pem"), lg.profile
            )
            for lg in loggers
        ]
        self.broker = EmbeddedBroker()
        self._api = ReadingsClient(base_url, relay_token)
        self._stop = threading.Event()
        self._relay_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fleet: Fleet | None = None
        self._bridge: Bridge | None = None

    @classmethod
    def for_places(
        cls, base_url: str, key_dir: Path, places: Sequence[tuple[str, str, str]]
    ) -> DemoSensors:
        """One logger per (role, API token, GLN), the first place's token relaying."""
        loggers = [
            DemoLogger(f"{role}-logger", token, gln, PROFILE_BY_ROLE.get(role, Profile.FRIDGE))
            for role, token, gln in places
        ]
        return cls(base_url, key_dir, loggers, relay_token=places[0][1])

    def start(self) -> None:
        """Register and bind the loggers, start the broker, the bridge and the publishing."""
        for logger, sensor in zip(self._loggers, self._sensors, strict=True):
            with ReadingsClient(self._base_url, logger.token) as api:
                api.register_sensor(sensor.sensor_id, b64(public_key_raw(sensor.key)))
                # from now: a binding may not start before its sensor's registration
                api.bind(
                    sensor.sensor_id,
                    kind="place",
                    target=logger.gln,
                    valid_from=dt.datetime.now(dt.UTC),
                )
        self.broker.start()
        config = BridgeConfig(
            host=self.broker.host,
            port=self.broker.port,
            client_id="medtrace-demo-bridge",
            version=MqttVersion.V311,
            batch_wait=0.05,
        )
        self._bridge = Bridge(config, self._api)
        self._bridge.connect()
        self._fleet = Fleet(
            self._sensors, host=self.broker.host, port=self.broker.port, version=MqttVersion.V311
        )
        self._fleet.start()
        self._threads = [
            threading.Thread(
                target=self._fleet.run,
                kwargs={"rate": _RATE, "stop": self._stop, "speed": _SPEED},
                daemon=True,
            ),
            threading.Thread(target=self._bridge.run, args=(self._relay_stop,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def finish(self, linger: float = 1.0, timeout: float = 30.0) -> tuple[int, int]:
        """Publish ``linger`` seconds more (so units at rest get a history), then stop
        publishing, wait until the bridge has made every reading durable, and stop.

        Returns (readings captured, the ledger size that covers them). Raises
        ``RuntimeError`` if the readings did not all arrive within ``timeout``.
        """
        assert self._fleet is not None and self._bridge is not None
        self._stop.wait(linger)
        self._stop.set()
        self._threads[0].join()
        self._fleet.flush(timeout)
        deadline = time.monotonic() + timeout
        stats = self._bridge.stats
        while stats.accepted + stats.duplicates + stats.rejected < self._fleet.published:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {stats.accepted} of {self._fleet.published} readings arrived"
                )
            time.sleep(0.05)
        self._relay_stop.set()
        self._threads[1].join()
        self._fleet.stop()
        self.broker.stop()
        self._api.close()
        return stats.accepted, stats.last_leaf + 1
