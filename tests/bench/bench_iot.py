"""IoT throughput: signed readings published to Mosquitto → durable (committed with their
ledger leaves), and the publish-to-durable delay.

Starts a real ``medtrace serve`` (SQLite by default, ``--database-url`` for PostgreSQL), one
or more real ``medtrace bridge`` processes (several share one MQTT 5 shared subscription), and
a simulated fleet publishing at QoS 1 to a Mosquitto 2.0 of its own, configured with the
settings medtrace ships (``iot/mosquitto.conf``): the system broker's default
``max_queued_messages 1000`` would drop readings whenever a bridge falls a second behind.
A reading's time is taken when it is signed and published, and its row records when it was
committed, so the delay of each reading is ``recorded_at - taken_at`` (one machine, one
clock).

    .venv/bin/python tests/bench/bench_iot.py --rate 3000 --duration 20
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select
from sqlmodel import Session

from medtrace.iot.simulator import Fleet
from medtrace.models import Role, as_utc
from medtrace.models.iot import Reading
from medtrace.services.registry import create_participant
from support.iot import (
    MOSQUITTO_HOST,
    new_sensors,
    poll,
    private_broker,
    reading_count,
    start_bridge,
    wait_until,
)
from support.live import start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3000, help="readings per second, total")
    parser.add_argument("--duration", type=float, default=20, help="seconds of publishing")
    parser.add_argument("--sensors", type=int, default=30)
    parser.add_argument("--bridges", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait at the end")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-iot-"))
    url = args.database_url or f"sqlite:///{folder / 'medtrace.db'}"
    server = start_server(database_url=url, data_dir=folder / "data")
    broker = private_broker(folder)
    broker.start()
    bridges = []
    try:
        with Session(server.engine) as session:
            token = create_participant(
                session=session,
                gln="9525678000004",
                name="Bench Logistics",
                role=Role.DISTRIBUTOR,
            ).token
        tag = f"b{secrets.token_hex(3)}"
        sensors = new_sensors(server, token, tag, args.sensors)
        for i in range(args.bridges):
            bridge = start_bridge(
                server,
                token,
                client_id=f"bench-{tag}-{i}",
                share_group=tag if args.bridges > 1 else "",
                log_path=folder / f"bridge-{i}.log",
                batch_size=args.batch_size,
                port=broker.port,
            )
            wait_until(lambda b=bridge: "relaying" in b.log(), 20, "a bridge to subscribe")
            bridges.append(bridge)
        fleet = Fleet(sensors, host=MOSQUITTO_HOST, port=broker.port)
        fleet.start()
        started = time.monotonic()
        fleet.run(rate=args.rate / args.sensors, stop=threading.Event(), duration=args.duration)
        publish_s = time.monotonic() - started
        fleet.flush(60)
        fleet.stop()
        if not poll(lambda: reading_count(server, tag) >= fleet.published, args.timeout):
            print(f"only {reading_count(server, tag)} of {fleet.published} arrived")
        with server.engine.connect() as conn:
            rows = conn.execute(
                select(Reading.taken_at, Reading.recorded_at).where(
                    Reading.sensor_id.startswith(tag)  # type: ignore[attr-defined]
                )
            ).all()
    finally:
        for bridge in bridges:
            bridge.stop()
        broker.stop()
        server.stop()

    delays = sorted((as_utc(r) - as_utc(t)).total_seconds() for t, r in rows)
    first = min(as_utc(t) for t, _ in rows)
    last = max(as_utc(r) for _, r in rows)
    span = (last - first).total_seconds()
    quantiles = statistics.quantiles(delays, n=100)
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(
        f"backend {backend}, {args.sensors} sensors, {args.bridges} bridge(s), "
        f"batch {args.batch_size}"
    )
    print(
        f"published {fleet.published} readings in {publish_s:.1f} s "
        f"({fleet.published / publish_s:.0f}/s offered)"
    )
    print(
        f"durable   {len(rows)} readings, first publish → last commit {span:.1f} s "
        f"({len(rows) / span:.0f}/s)"
    )
    print(
        f"delay publish → durable: p50 {quantiles[49]:.3f} s, p99 {quantiles[98]:.3f} s, "
        f"max {delays[-1]:.3f} s"
    )


if __name__ == "__main__":
    main()
