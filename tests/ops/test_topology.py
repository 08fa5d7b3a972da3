"""The deployment of docker-compose.yml, without Docker, carries a pallet from the maker to the
patient: two API replicas, a sequencer, a scheduler, a bridge and a witness, each a
``medtrace serve --role`` process, against a fresh PostgreSQL database and a Mosquitto.

Stations keep their envelopes in outboxes and send them to the two API replicas in turn;
simulated sensors publish readings that the bridge relays. At the end the dispensed pack's
verify document is what a patient must see, every acknowledged envelope is in the store and
on the ledger once, the checkpoint covers all of it with a witness's cosignature, the audit
passes and the scheduler raised its expiry alert.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from independent_checker import check_url
from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.iot.client import ReadingsClient
from medtrace.iot.simulator import Fleet
from medtrace.ledger import CosignatureVerifier
from medtrace.models import Event
from medtrace.models.alerts import Alert
from medtrace.protocol.identifiers import digital_link_path
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.forward import forward
from medtrace.scanners.outbox import Outbox, Status
from support.chain import make_chain
from support.iot import PrivateBroker, new_sensors, private_broker, reading_count, wait_until
from support.topology import Topology, ledger_census, running_topology

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.mqtt]

LOT = "TOPO1"
EXPIRY = dt.date.today() + dt.timedelta(days=30)  # within the expiry warning: an alert
UNITS = 6
DISPENSED = 3


class Stations:
    """Each participant's station with its outbox, sending to the API replicas in turn."""

    def __init__(self, topology: Topology, folder: Path) -> None:
        self._replicas = cycle(range(len(topology.apis)))
        self._topology = topology
        self._folder = folder
        self.outboxes: dict[str, Outbox] = {}
        self.used: list[int] = []

    def send(self, member: Enrolled, *envelopes: dict[str, Any]) -> None:
        """Put ``envelopes`` in the station's outbox and forward them to the next replica."""
        station_id = member.station.station_id
        outbox = self.outboxes.setdefault(station_id, Outbox(self._folder / f"{station_id}.db"))
        for envelope in envelopes:
            outbox.add(envelope)
        replica = next(self._replicas)
        self.used.append(replica)
        with CaptureClient(self._topology.apis[replica].url, member.token) as client:
            done = forward(outbox, client)
        assert (done.sent, done.refused) == (len(envelopes), 0), outbox.entries()

    def sent_event_ids(self) -> dict[str, int | None]:
        """Every acknowledged envelope's event id and the leaf index it was given."""
        return {
            entry.event_id: entry.leaf_index
            for outbox in self.outboxes.values()
            for entry in outbox.entries(Status.SENT, limit=10_000)
        }


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    (tmp_path / "mosquitto").mkdir()
    broker = private_broker(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def bind(server_url: str, token: str, sensor_id: str, kind: str, target: str) -> None:
    since = dt.datetime.now(dt.UTC)  # the sensor was registered just before
    with ReadingsClient(server_url, token) as api:
        api.bind(sensor_id, kind=kind, target=target, valid_from=since)


@pytest.mark.parametrize("fresh_database_url", ["postgres"], indirect=True)
def test_the_whole_deployment_carries_a_pallet_from_maker_to_patient(
    fresh_database_url: str, tmp_path: Path, broker: PrivateBroker
) -> None:
    fast_scheduler = {"MEDTRACE_EXPIRY_CHECK_INTERVAL": "1", "MEDTRACE_WEBHOOK_INTERVAL": "1"}
    with (
        running_topology(
            fresh_database_url, tmp_path, broker_port=broker.port, settings=fast_scheduler
        ) as topology,
        make_chain(topology.apis[0]) as chain,
    ):
        maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
        api = topology.apis[0].url
        pallet = with_check_digit("39521234" + f"{secrets.randbelow(10**9):09d}")
        (truck,) = new_sensors(topology.apis[0], maker.token, "topo-truck", 1)
        (hub_fridge,) = new_sensors(topology.apis[0], hub.token, "topo-hub", 1)
        (fridge,) = new_sensors(topology.apis[0], pharmacy.token, "topo-pharmacy", 1)
        bind(api, maker.token, truck.sensor_id, "shipment", pallet)
        bind(api, hub.token, hub_fridge.sensor_id, "place", hub.gln)
        bind(api, pharmacy.token, fridge.sensor_id, "place", pharmacy.gln)
        topology.start_bridge(hub.token, broker.port)
        fleet = Fleet([truck, hub_fridge, fridge], host="127.0.0.1", port=broker.port)
        stop_sensors = threading.Event()
        fleet.start()
        sensing = threading.Thread(target=fleet.run, kwargs={"rate": 5, "stop": stop_sensors})
        sensing.start()

        stations = Stations(topology, tmp_path / "outboxes")
        (tmp_path / "outboxes").mkdir()
        serials = [f"TOPO{secrets.token_hex(4).upper()}{i}" for i in range(UNITS)]
        units = [{"gtin": GTIN, "serial": s} for s in serials]
        try:
            stations.send(
                maker, *(maker.station.commission(GTIN, s, lot=LOT, expiry=EXPIRY) for s in serials)
            )
            stations.send(maker, maker.station.sign("pack", {"sscc": pallet}, children=units))
            stations.send(
                maker, maker.station.sign("ship", {"sscc": pallet}, destination_gln=hub.gln)
            )
            time.sleep(1.5)  # on the road: the truck's logger travels with the pallet
            stations.send(hub, hub.station.sign("receive", {"sscc": pallet}))
            time.sleep(1.5)  # in the hub's cold room
            stations.send(
                hub, hub.station.sign("ship", {"sscc": pallet}, destination_gln=pharmacy.gln)
            )
            stations.send(pharmacy, pharmacy.station.sign("receive", {"sscc": pallet}))
            stations.send(pharmacy, pharmacy.station.sign("unpack", {"sscc": pallet}))
            stations.send(pharmacy, *(pharmacy.station.sign("store", unit) for unit in units))
            time.sleep(2)  # in the pharmacy's fridge
            for serial in serials[:DISPENSED]:  # one dispense per request, replicas in turn
                stations.send(pharmacy, pharmacy.station.dispense(GTIN, serial))
        finally:
            stop_sensors.set()
            sensing.join()
        assert fleet.flush(30), "the broker acknowledged every reading"
        fleet.stop()
        assert set(stations.used) == {0, 1}
        for server in topology.apis:
            assert "POST /api/v1/capture" in server.log(), "both replicas captured events"

        # Every reading the broker acknowledged is relayed by the bridge, once.
        wait_until(
            lambda: reading_count(topology.apis[0], "topo-") == fleet.published,
            60,
            "the bridge to relay every reading",
        )
        note = topology.wait_until_integrated()
        census = ledger_census(topology.engine)
        assert sum(census.values()) == int(note.splitlines()[1]), "the checkpoint covers all"
        sent = stations.sent_event_ids()
        assert len(sent) == UNITS * 2 + 6 + DISPENSED
        assert all(census[("event", eid)] == 1 for eid in sent)
        readings = [k for k in census if k[0] == "reading"]
        assert len(readings) == fleet.published and all(census[k] == 1 for k in readings)
        with topology.engine.connect() as conn:
            stored = dict(
                conn.execute(
                    select(Event.event_id, Event.leaf_index).where(
                        Event.event_id.in_(list(sent))  # type: ignore[union-attr]
                    )
                ).all()
            )
        assert stored == sent, "each acknowledged envelope is stored at its acknowledged leaf"

        # The patient's view of a dispensed pack, from the other replica.
        dispensed = serials[0]
        url = topology.apis[1].url + digital_link_path(GTIN, dispensed, lot=LOT, expiry=EXPIRY)
        verify = httpx.get(url, headers={"Accept": "application/json"}, timeout=30).json()
        assert (verify["verdict"], verify["unit"]["state"]) == ("genuine", "dispensed")
        assert [e["type"] for e in verify["events"]] == [
            "commission",
            "pack",
            "ship",
            "receive",
            "ship",
            "receive",
            "unpack",
            "store",
            "dispense",
        ]
        places = {point["where"] for point in verify["temperature"]["series"]}
        assert {hub.gln, pharmacy.gln} <= places, verify["temperature"]
        assert verify["temperature"]["out_of_band"] == 0
        checks = check_url(url, vkey=topology.log_vkey)
        assert checks and all(c.status == "ok" for c in checks), checks

        # The witness cosigned the log's latest checkpoint.
        assert topology.witness_vkey is not None
        witness = CosignatureVerifier.from_vkey(topology.witness_vkey)
        wait_until(
            lambda: (
                witness.verified_line(
                    httpx.get(f"{api}/api/v1/ledger/checkpoint", params={"witnessed": "true"}).text
                )
                is not None
            ),
            30,
            "a cosigned checkpoint",
        )

        audit = topology.audit()
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "OK" in audit.stdout

        # The scheduler ran: the stock left at the pharmacy expires within the warning.
        def expiry_alerts() -> int:
            with topology.engine.connect() as conn:
                return int(
                    conn.execute(
                        select(func.count()).select_from(Alert).where(Alert.rule == "expiry.soon")  # type: ignore[arg-type]
                    ).scalar_one()
                )

        wait_until(lambda: expiry_alerts() >= 1, 30, "the scheduler's expiry alert")
        assert topology.scheduler is not None
        assert "scheduler: leading" in topology.scheduler.log()
