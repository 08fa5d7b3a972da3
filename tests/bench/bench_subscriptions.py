"""EPCIS query visibility and subscription pushes in a store of many events.

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``), enrols
the test chain and a regulator, fills the store through the capture service with ``--events``
commissioning events of the maker of which a tenth are shipped to the distributor, then
times ``GET /epcis/events`` (first page of 30 shipments) for the regulator (who reads every
event) and the distributor (who reads the events it is party to), and a dispatcher pass
(``medtrace.services.subscriptions.dispatch``) for the pharmacy's subscription to its inbound
shipments when nothing is new. Last, with the dispatcher running as the scheduler runs it
(every ``MEDTRACE_WEBHOOK_STREAM_INTERVAL``, 1 s), it measures how long after a shipment's
capture the pharmacy's receiver (a local HTTP server) has it.

    .venv/bin/python tests/bench/bench_subscriptions.py [--events 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]
from bench_portal import _capture, _report, _timed  # type: ignore[import-not-found]

from medtrace.demo import GTIN, random_serial, with_check_digit
from medtrace.models import Role
from medtrace.services.registry import create_participant
from medtrace.services.subscriptions import dispatch
from medtrace.services.webhooks import DeliveryPolicy
from support.chain import EXPIRY, Chain, make_chain
from support.live import start_server

RECEIVER = "127.0.0.2"
POLICY = DeliveryPolicy(deadline=5, allowed_networks=(ipaddress.ip_network(f"{RECEIVER}/32"),))


def _fill(chain: Chain, events: int) -> None:
    maker, hub = chain.maker, chain.hub
    serials = [random_serial() for _ in range(events)]
    _capture(chain.server, maker, (maker.station.commission(GTIN, s, lot="B1", expiry=EXPIRY)
                                   for s in serials))  # fmt: skip
    shipped = serials[: events // 10]
    _capture(chain.server, maker, (maker.station.ship(GTIN, s, to=hub.gln) for s in shipped))
    _capture(chain.server, hub, (hub.station.receive(GTIN, s) for s in shipped))


def _receiver(arrived: list[float]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.append(time.monotonic())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer((RECEIVER, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{RECEIVER}:{server.server_address[1]}/inbound"


def _shipments(chain: Chain, token: str) -> Callable[[], httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"}
    params = {"EQ_bizStep": "shipping", "perPage": "30"}
    return lambda: httpx.get(f"{chain.server.url}/epcis/events", params=params, headers=headers)


def _subscribe(chain: Chain, dest: str) -> None:
    """The pharmacy subscribes ``dest`` to the shipments addressed to it."""
    headers = {"Authorization": f"Bearer {chain.pharmacy.token}"}
    to_pharmacy = f"https://id.gs1.org/414/{chain.pharmacy.gln}"
    query = {"EQ_bizStep": ["shipping"], "EQ_destination_owning_party": [to_pharmacy]}
    named = {"name": "in", "query": query}
    httpx.post(f"{chain.server.url}/epcis/queries", json=named, headers=headers).raise_for_status()
    subscription = {"dest": dest, "stream": True, "signatureToken": "b" * 32}
    httpx.post(
        f"{chain.server.url}/epcis/queries/in/subscriptions", json=subscription, headers=headers
    ).raise_for_status()


def main() -> None:
    """Fill the store, then time the reads, an idle pass and the push latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(_database(args.backend, folder))
        allowed = {"MEDTRACE_WEBHOOK_ALLOWED_NETWORKS": f'["{RECEIVER}/32"]'}
        server = start_server(database_url=url, data_dir=folder / "data", env=allowed)
        stack.callback(server.stop)
        chain = stack.enter_context(make_chain(server))
        with Session(server.engine) as session:
            regulator = create_participant(
                session=session, gln=with_check_digit("952999900001"), name="R", role=Role.REGULATOR
            )
        started = time.monotonic()
        _fill(chain, args.events)
        print(f"store: {args.events * 12 // 10} events in {time.monotonic() - started:.0f} s")
        for who, token in (("regulator", regulator.token), ("distributor", chain.hub.token)):
            _report(
                f"GET /epcis/events, shipments, {who}", *_timed(_shipments(chain, token), args.runs)
            )
        arrived: list[float] = []
        receiver, dest = _receiver(arrived)
        stack.callback(receiver.shutdown)
        _subscribe(chain, dest)
        idle = []
        for _ in range(args.runs):
            start_pass = time.perf_counter()
            dispatch(engine=server.engine, policy=POLICY)
            idle.append((time.perf_counter() - start_pass) * 1000)
        print(
            f"dispatcher pass, one subscription, nothing new: p50 {statistics.median(idle):.0f} ms"
        )
        latencies = _push_latencies(chain, arrived, runs=min(args.runs, 10))
        print(
            f"push after capture (dispatcher every 1 s): p50 {statistics.median(latencies):.2f} s, "
            f"max {max(latencies):.2f} s, {len(latencies)} shipments"
        )


def _push_latencies(chain: Chain, arrived: list[float], *, runs: int) -> list[float]:
    """Ship ``runs`` units from the hub to the pharmacy, one at a time, with the dispatcher
    running every second in a thread; seconds from each capture's answer to its arrival."""
    stop, engine = threading.Event(), chain.server.engine

    def run() -> None:
        while not stop.wait(1.0):
            dispatch(engine=engine, policy=POLICY)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    hub, latencies = chain.hub, []
    try:
        for _ in range(runs):
            serial = random_serial()
            chain.commission(serial)
            chain.maker.api.capture([chain.maker.station.ship(GTIN, serial, to=hub.gln)])
            hub.api.capture([hub.station.receive(GTIN, serial)])
            before = len(arrived)
            hub.api.capture([hub.station.ship(GTIN, serial, to=chain.pharmacy.gln)])
            captured = time.monotonic()
            while len(arrived) == before:
                time.sleep(0.01)
            latencies.append(arrived[-1] - captured)
    finally:
        stop.set()
        thread.join()
    return latencies


if __name__ == "__main__":
    main()
