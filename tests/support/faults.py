"""The fault harness: a deployment under steady load loses and doubles nothing acknowledged.

Stations commission units through their outboxes (a station counts an envelope as
acknowledged once the API answered it with a leaf index) and sensors publish signed readings
at QoS 1 (acknowledged once the broker answered PUBACK), while the harness kills or restarts
one part of the deployment:

- ``kill api``: SIGKILL the API replica the bridge relays into; it restarts on its port.
- ``kill sequencer``: SIGKILL the leading sequencer; the standby takes the advisory lock.
- ``kill bridge``: SIGKILL the bridge; it restarts with its persistent MQTT session.
- ``restart mosquitto``: stop and start the broker (its persistence keeps the sessions).
- ``restart postgresql``: ``pg_ctl restart -m fast``, every connection cut.

After each fault the load stops, the stations drain their outboxes and the harness counts,
for every acknowledged event and reading, whether it is in the store (at the acknowledged
leaf, for events) and how many ledger leaves record it; then ``medtrace audit`` must pass and
the checkpoint from before the fault must be consistent with the one after.

The machine's PostgreSQL and Mosquitto are shared, so the harness restarts only its own: a
private PostgreSQL cluster and a private Mosquitto, both on free ports in temporary folders.
``tests/ops/faults.py`` runs it as a script; ``tests/ops/test_faults.py`` as a (smaller) test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, tuple_

from medtrace.demo import GTIN, Enrolled
from medtrace.iot.simulator import SimulatedSensor
from medtrace.models import Event
from medtrace.models.iot import Reading
from medtrace.protocol.mqtt import MqttVersion, new_client
from medtrace.protocol.readings import reading_topic, sign_reading
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import ServerUnreachable
from medtrace.scanners.forward import forward
from medtrace.scanners.outbox import Outbox, Status
from medtrace.scanners.station import Station

from .chain import EXPIRY, LOT, make_chain, new_serial
from .iot import PrivateBroker, new_sensors, poll, private_broker, wait_until
from .postgres import PrivateCluster, start_private_cluster
from .topology import LeafKey, Topology, ledger_census, running_topology

FAULTS = ("kill api", "kill sequencer", "kill bridge", "restart mosquitto", "restart postgresql")


@dataclass(frozen=True)
class Load:
    """How hard the deployment is driven, and for how long around each fault."""

    stations: int = 2
    batch: int = 5  # envelopes a station adds per pass
    pause: float = 0.2  # seconds between a station's passes
    sensors: int = 5
    rate: float = 10  # readings per second per sensor
    before: float = 3  # seconds of load before the fault
    after: float = 4  # seconds of load after recovery


@dataclass(frozen=True)
class Tally:
    """What one fault left behind: acknowledged, found (once or more) and duplicated."""

    fault: str
    events_acknowledged: int
    events_found: int
    events_duplicated: int
    readings_acknowledged: int
    readings_found: int
    readings_duplicated: int
    audit_passed: bool
    checkpoints_consistent: bool
    failed_passes: int  # station forwarding passes that met a replica down or failing
    out_seconds: float  # until the part answered again (or the standby led)
    seconds: float

    @property
    def clean(self) -> bool:
        """Nothing lost, nothing doubled, the audit and the checkpoints sound."""
        return (
            self.events_found == self.events_acknowledged
            and self.readings_found == self.readings_acknowledged
            and self.events_duplicated == self.readings_duplicated == 0
            and self.audit_passed
            and self.checkpoints_consistent
        )


class StationLoad:
    """Stations of one participant commissioning units at a steady pace, each through its
    own outbox, sending to the API replicas in turn; a replica that is down or failing
    leaves the envelopes pending for the next pass (that is what outboxes are for)."""

    def __init__(self, member: Enrolled, urls: Sequence[str], folder: Path, load: Load) -> None:
        self._member, self._urls, self._load = member, list(urls), load
        self.stations: list[tuple[Station, Outbox]] = []
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(load.stations):
            station = Station(f"load-{new_serial()}", member.gln, Ed25519PrivateKey.generate())
            member.api.register_station(station.station_id, station.public_key)
            self.stations.append((station, Outbox(folder / f"{station.station_id}.db")))
        self._turn = 0
        self.failed_passes = 0  # forwarding passes that met a replica down or failing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for station, outbox in self.stations:
                for _ in range(self._load.batch):
                    outbox.add(station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY))
                self._forward(outbox)
            self._stop.wait(self._load.pause)

    def _forward(self, outbox: Outbox) -> None:
        url = self._urls[self._turn % len(self._urls)]
        self._turn += 1
        with CaptureClient(url, self._member.token, timeout=10) as client:
            try:
                forward(outbox, client)
            except ServerUnreachable:
                # down, restarting, or without its database: pending for the next pass
                self.failed_passes += 1

    def drain(self, timeout: float) -> None:
        """Forward until every outbox is settled; fail after ``timeout`` seconds."""

        def settled() -> bool:
            for _, outbox in self.stations:
                self._forward(outbox)
            return all(not outbox.pending(1) for _, outbox in self.stations)

        wait_until(settled, timeout, "the outboxes to drain")

    def acknowledged(self) -> dict[str, int | None]:
        """Every envelope the API acknowledged: its event id and the leaf index it was given."""
        return {
            entry.event_id: entry.leaf_index
            for _, outbox in self.stations
            for entry in outbox.entries(Status.SENT, limit=1_000_000)
        }

    def refused(self) -> int:
        return sum(outbox.counts().get(Status.REFUSED, 0) for _, outbox in self.stations)


class SensorLoad:
    """Sensors publishing signed readings at QoS 1 through one connection; a reading is
    acknowledged once the broker's PUBACK arrived (paho re-sends the others on reconnect,
    including those published while it was disconnected)."""

    def __init__(self, sensors: Sequence[SimulatedSensor], port: int, load: Load) -> None:
        self._sensors, self._rate = list(sensors), load.rate
        self._client = new_client(f"load-{new_serial()}", MqttVersion.V5, persistent=False)
        self._client.max_queued_messages_set(0)  # unlimited: the buffer while disconnected
        self._client.max_inflight_messages_set(1000)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_publish = self._on_publish
        self._client.connect_async("127.0.0.1", port, keepalive=30)
        self._client.loop_start()
        # Packet ids (mids) of this fault's readings and those the broker acknowledged: the
        # acknowledgement may come before publish() returns, so the two meet only at the end.
        self._published: dict[int, tuple[str, int]] = {}
        self._acked: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, _client: mqtt.Client, _userdata: object, mid: int, *_: object) -> None:
        self._acked.add(mid)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _run(self) -> None:
        start, rounds = time.monotonic(), 0
        while not self._stop.is_set():
            now = dt.datetime.now(dt.UTC)
            for sensor in self._sensors:
                reading = sensor.reading(now, time.monotonic() - start)
                if reading is None:
                    continue
                payload = sign_reading(reading, sensor.key)
                info = self._client.publish(reading_topic(sensor.sensor_id), payload, qos=1)
                assert info.mid not in self._published, "packet ids wrapped within one fault"
                self._published[info.mid] = (sensor.sensor_id, reading["seq"])
            rounds += 1
            self._stop.wait(max(0.0, start + rounds / self._rate - time.monotonic()))

    def flush(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every reading published so far."""
        return poll(lambda: self._published.keys() <= self._acked, timeout)

    def acknowledged(self) -> set[tuple[str, int]]:
        return {key for mid, key in self._published.items() if mid in self._acked}

    def forget(self) -> None:
        """Start counting afresh (for the next fault); call only once flushed."""
        self._published, self._acked = {}, set()


@dataclass
class Harness:
    """A private deployment, its loads, and the faults it can suffer."""

    topology: Topology
    cluster: PrivateCluster
    broker: PrivateBroker
    stations: StationLoad
    sensors: SensorLoad
    load: Load
    bridge_token: str

    def inject(self, fault: str) -> float:
        """Do ``fault`` and bring the deployment back (see the module docstring); return the
        seconds the part was out (until it answers again, or the standby leads)."""
        topology = self.topology
        struck = time.monotonic()
        if fault == "kill api":
            victim = topology.apis[0]
            port = int(victim.url.rsplit(":", 1)[1])
            victim.process.kill()
            victim.process.wait()
            time.sleep(1)
            topology.start_api(0, port=port)
        elif fault == "kill sequencer":
            leader = topology.leading_sequencer()
            assert leader is not None, "no sequencer leads"
            leader.kill()
            wait_until(
                lambda: topology.leading_sequencer() not in (None, leader),
                30,
                "the standby sequencer to take the lock",
            )
            out = time.monotonic() - struck
            topology.start_sequencer(topology.sequencers.index(leader))  # the new standby
            return out
        elif fault == "kill bridge":
            assert topology.bridge is not None
            topology.bridge.kill()
            time.sleep(1)
            topology.start_bridge(self.bridge_token, self.broker.port)
        elif fault == "restart mosquitto":
            self.broker.stop()
            time.sleep(1)
            self.broker.start()
        elif fault == "restart postgresql":
            self.cluster.restart()
        else:
            raise ValueError(f"no fault {fault!r}; one of {', '.join(FAULTS)}")
        return time.monotonic() - struck

    def run(self, fault: str) -> Tally:
        """Load, fault, recover, load, drain; then count and check."""
        started = time.monotonic()
        before = self.topology.checkpoint()
        self.sensors.forget()
        already = set(self.stations.acknowledged())
        failed_before = self.stations.failed_passes
        self.stations.start()
        self.sensors.start()
        time.sleep(self.load.before)
        out = self.inject(fault)
        time.sleep(self.load.after)
        self.stations.stop()
        self.sensors.stop()
        self.stations.drain(timeout=180)
        assert self.sensors.flush(timeout=120), "the broker acknowledged the readings"
        assert self.stations.refused() == 0, "no envelope of the load is refused"
        events = {k: v for k, v in self.stations.acknowledged().items() if k not in already}
        readings = self.sensors.acknowledged()
        poll(lambda: len(self._stored_readings(readings)) == len(readings), 120)
        after = self.topology.wait_until_integrated(timeout=120)
        try:
            self.topology.assert_consistent(before, after)
            consistent = True
        except AssertionError:
            consistent = False
        census = ledger_census(self.topology.engine)
        stored_events = self._stored_events(events)
        stored_readings = self._stored_readings(readings)
        return Tally(
            fault=fault,
            events_acknowledged=len(events),
            events_found=sum(
                1
                for eid, leaf in events.items()
                if stored_events.get(eid) == leaf and census[("event", eid)] >= 1
            ),
            events_duplicated=sum(1 for eid in events if census[("event", eid)] > 1),
            readings_acknowledged=len(readings),
            readings_found=sum(
                1 for key in readings if key in stored_readings and census[_reading(key)] >= 1
            ),
            readings_duplicated=sum(1 for key in readings if census[_reading(key)] > 1),
            audit_passed=self.topology.audit().returncode == 0,
            checkpoints_consistent=consistent,
            failed_passes=self.stations.failed_passes - failed_before,
            out_seconds=out,
            seconds=time.monotonic() - started,
        )

    def _stored_events(self, events: dict[str, int | None]) -> dict[str, int]:
        ids = list(events)
        found: dict[str, int] = {}
        with self.topology.engine.connect() as conn:
            for first in range(0, len(ids), 1000):
                rows = conn.execute(
                    select(Event.event_id, Event.leaf_index).where(
                        Event.event_id.in_(ids[first : first + 1000])  # type: ignore[union-attr]
                    )
                )
                found.update({str(eid): int(leaf) for eid, leaf in rows})
        return found

    def _stored_readings(self, readings: set[tuple[str, int]]) -> set[tuple[str, int]]:
        keys = sorted(readings)
        found: set[tuple[str, int]] = set()
        with self.topology.engine.connect() as conn:
            for first in range(0, len(keys), 1000):
                rows = conn.execute(
                    select(Reading.sensor_id, Reading.seq).where(
                        tuple_(Reading.sensor_id, Reading.seq).in_(keys[first : first + 1000])
                    )
                )
                found.update((str(s), int(q)) for s, q in rows)
        return found


def _reading(key: tuple[str, int]) -> LeafKey:
    return ("reading", key[0], str(key[1]))


@contextmanager
def private_deployment(load: Load) -> Iterator[Harness]:
    """A private PostgreSQL and Mosquitto, the deployment on them (two API replicas, two
    sequencers, a scheduler, a bridge) and its loads; everything removed afterwards."""
    with ExitStack() as cleanup:
        folder = Path(tempfile.mkdtemp(prefix="medtrace-faults-"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        cluster = start_private_cluster()
        cleanup.callback(cluster.destroy)
        (folder / "mosquitto").mkdir()
        broker = private_broker(folder / "mosquitto")
        broker.start()
        cleanup.callback(broker.stop)
        topology = cleanup.enter_context(
            running_topology(
                cluster.url(), folder, broker_port=broker.port, sequencers=2, witness=False
            )
        )
        chain = cleanup.enter_context(make_chain(topology.apis[0]))
        token = chain.hub.token
        topology.start_bridge(token, broker.port)
        chain.commission(new_serial())  # a first checkpoint, for the first fault's "before"
        topology.wait_until_integrated()
        simulated = new_sensors(topology.apis[0], token, f"load-{new_serial()}", load.sensors)
        sensors = SensorLoad(simulated, broker.port, load)
        cleanup.callback(sensors.close)
        stations = StationLoad(
            chain.maker, [api.url for api in topology.apis], folder / "outboxes", load
        )
        yield Harness(topology, cluster, broker, stations, sensors, load, token)


def run_rounds(
    rounds: int, load: Load, faults: Sequence[str] = FAULTS, report: Callable[[Tally], None] = print
) -> list[Tally]:
    """Run every fault ``rounds`` times, each round on a new private deployment."""
    tallies: list[Tally] = []
    for _ in range(rounds):
        with private_deployment(load) as harness:
            for fault in faults:
                tally = harness.run(fault)
                report(tally)
                tallies.append(tally)
    return tallies


def _row(tally: Tally) -> str:
    return (
        f"| {tally.fault} | {tally.events_acknowledged} | {tally.events_found} "
        f"| {tally.events_duplicated} | {tally.readings_acknowledged} | {tally.readings_found} "
        f"| {tally.readings_duplicated} | {'pass' if tally.audit_passed else 'FAIL'} "
        f"| {'yes' if tally.checkpoints_consistent else 'NO'} | {tally.failed_passes} "
        f"| {tally.out_seconds:.1f} | {tally.seconds:.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Script mode: run the harness ``--rounds`` times and print the counts per fault."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stations", type=int, default=Load.stations)
    parser.add_argument("--batch", type=int, default=Load.batch)
    parser.add_argument("--sensors", type=int, default=Load.sensors)
    parser.add_argument("--rate", type=float, default=Load.rate)
    parser.add_argument("--seconds", type=float, default=Load.before + Load.after)
    parser.add_argument("--fault", action="append", choices=FAULTS, help="(default: all)")
    args = parser.parse_args(argv)
    load = Load(
        stations=args.stations,
        batch=args.batch,
        sensors=args.sensors,
        rate=args.rate,
        before=args.seconds / 2,
        after=args.seconds / 2,
    )
    print(
        "| fault | events acknowledged | found | duplicated | readings acknowledged | found "
        "| duplicated | audit | checkpoints consistent | station passes failed | out s | s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    tallies = run_rounds(args.rounds, load, args.fault or FAULTS, report=lambda t: print(_row(t)))
    for fault in args.fault or FAULTS:
        mine = [t for t in tallies if t.fault == fault]
        print(
            f"| **{fault}, {len(mine)} rounds** "
            f"| {sum(t.events_acknowledged for t in mine)} | {sum(t.events_found for t in mine)} "
            f"| {sum(t.events_duplicated for t in mine)} "
            f"| {sum(t.readings_acknowledged for t in mine)} "
            f"| {sum(t.readings_found for t in mine)} "
            f"| {sum(t.readings_duplicated for t in mine)} "
            f"| {sum(t.audit_passed for t in mine)}/{len(mine)} pass "
            f"| {sum(t.checkpoints_consistent for t in mine)}/{len(mine)} "
            f"| {sum(t.failed_passes for t in mine)} "
            f"| {max(t.out_seconds for t in mine):.1f} max | |"
        )
    return 0 if all(t.clean for t in tallies) else 1
