"""Capture throughput: signed events/s through ``POST /api/v1/capture``, against Ed25519.

For each backend (SQLite, PostgreSQL) the script starts real ``medtrace serve`` processes on
one database (the first runs the sequencer; the others are API replicas, as DESIGN.md scales
out), enrols the test chain, pre-signs commissioning events, and has a load generator in a
separate process post them in batches of 500 over several connections. A batch counts once
its 201 arrived, i.e. once it is committed (durable). It prints events/s and the p50/p99
latency per batch.

In the same run it measures the physical limit: the same signatures verified with
``cryptography`` in one process per core, and prints the ratio; and the same with libsodium,
the (faster) verifier capture itself uses. ``--profile`` adds a cProfile
summary of the capture path (in-process app, SQLite) to show where the time goes.

    .venv/bin/python tests/bench/bench_capture.py [--events 20000] [--api-processes 2]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import multiprocessing
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medtrace.demo import GTIN
from medtrace.protocol.envelope import canonical_json
from medtrace.protocol.keys import b64decode_canonical, public_key_raw, verify_ed25519
from support.chain import EXPIRY, LOT, make_chain
from support.live import LiveServer, start_server

BATCH = 500
EPCIS_EVENTS = 10_000
ADMIN_URL = os.environ.get(
    "MEDTRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"medtrace_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def _servers(database_url: str, folder: Path, count: int) -> Iterator[list[LiveServer]]:
    """``count`` API processes on one database; only the first runs the sequencer."""
    with ExitStack() as stack:
        first = start_server(database_url=database_url, data_dir=folder / "api-0")
        stack.callback(first.stop)
        servers = [first]
        os.environ["MEDTRACE_LOG_KEY_PATH"] = str(first.data_dir / "keys" / "log.pem")
        os.environ["MEDTRACE_RUN_SEQUENCER"] = "false"
        try:
            for n in range(1, count):
                replica = start_server(database_url=database_url, data_dir=folder / f"api-{n}")
                stack.callback(replica.stop)
                servers.append(replica)
        finally:
            del os.environ["MEDTRACE_LOG_KEY_PATH"], os.environ["MEDTRACE_RUN_SEQUENCER"]
        yield servers


def _post_all(
    urls: Sequence[str], token: str, bodies: Sequence[bytes], connections: int
) -> tuple[float, list[float]]:
    """The load generator: post every body, ``connections`` at a time, round-robin over the
    API processes; return the wall time and each batch's latency."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = iter(enumerate(bodies))

    def worker(n: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=urls[n % len(urls)], timeout=120, headers=headers) as client:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                started = time.perf_counter()
                response = client.post("/api/v1/capture", content=item[1])
                if response.status_code != 201:
                    raise RuntimeError(f"batch {item[0]}: {response.status_code} {response.text}")
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def _load_process(
    urls: Sequence[str],
    token: str,
    bodies: Sequence[bytes],
    connections: int,
    out: multiprocessing.Queue[Any],
) -> None:
    out.put(_post_all(urls, token, bodies, connections))


def _verify_slice(args: tuple[str, bytes, list[tuple[bytes, bytes]]]) -> int:
    library, public_key, pairs = args
    if library == "cryptography":
        key = Ed25519PublicKey.from_public_bytes(public_key)
        for signature, message in pairs:
            key.verify(signature, message)
    else:  # libsodium, as capture checks signatures
        for signature, message in pairs:
            verify_ed25519(public_key, signature, message)
    return len(pairs)


def verify_limit(
    library: str, public_key: bytes, envelopes: Sequence[dict[str, Any]], cores: int
) -> float:
    """Signatures verified per second with ``library`` (``cryptography``, the issue's yardstick,
    or ``libsodium``, which capture uses), one process per core (the canonicalisation of the
    event is part of the work, as in capture)."""
    pairs = [(b64decode_canonical(e["signature"]), canonical_json(e["event"])) for e in envelopes]
    slices = [(library, public_key, pairs[n::cores]) for n in range(cores)]
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(_verify_slice, [(library, public_key, pairs[:100])] * cores)  # warm up
        started = time.perf_counter()
        total = sum(pool.map(_verify_slice, slices))
        return total / (time.perf_counter() - started)


def _percentile(values: Sequence[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def run_backend(backend: str, events: int, api_processes: int, connections: int) -> float:
    """Run one backend; print and return its events/s."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-capture-")))
        url = stack.enter_context(_database(backend, folder))
        servers = stack.enter_context(_servers(url, folder, api_processes))
        chain = stack.enter_context(make_chain(servers[0]))
        station = chain.maker.station
        envelopes = [
            station.commission(GTIN, f"B{n:08d}", lot=LOT, expiry=EXPIRY) for n in range(events)
        ]
        bodies = [json.dumps(envelopes[i : i + BATCH]).encode() for i in range(0, events, BATCH)]
        spawn = multiprocessing.get_context("spawn")
        out: multiprocessing.Queue[Any] = spawn.Queue()
        loader = spawn.Process(
            target=_load_process,
            args=([s.url for s in servers], chain.maker.token, bodies, connections, out),
        )
        loader.start()
        wall, latencies = out.get()
        loader.join()
        size = servers[0].snapshot()[0]
        rate = events / wall
        p50, p99 = (_percentile(latencies, q) * 1000 for q in (50, 99))
        print(
            f"{backend:8} {events} events in {len(bodies)} batches of {BATCH}, "
            f"{api_processes} API processes, {connections} connections: {rate:,.0f} events/s;"
            f" per batch p50 {p50:.0f} ms, p99 {p99:.0f} ms; log size {size}"
        )
        epcis_capture(servers[0].url, chain.maker.token, chain.maker.gln, EPCIS_EVENTS)
        for library in ("cryptography", "libsodium"):
            limit = verify_limit(
                library, public_key_raw(station.key), envelopes, os.cpu_count() or 1
            )
            print(
                f"{'':8} Ed25519 verify limit with {library} ({os.cpu_count()} processes): "
                f"{limit:,.0f}/s; capture is {rate / limit:.0%} of it"
            )
        return rate


def epcis_capture(url: str, token: str, gln: str, count: int) -> None:
    """Post one EPCISDocument of ``count`` commissioning ObjectEvents (one EPC each) to
    ``POST /epcis/capture`` and time it until the job reports success."""
    expiry = EXPIRY.isoformat()
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": "2026-11-22T10:00:00.000Z",
            "eventTimeZoneOffset": "+00:00",
            "epcList": [f"https://id.gs1.org/01/{GTIN}/21/E{n:08d}"],
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "readPoint": {"id": f"https://id.gs1.org/414/{gln}"},
            "ilmd": {"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": expiry},
        }
        for n in range(count)
    ]
    body = json.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-11-22T10:00:00Z",
            "epcisBody": {"eventList": events},
        }
    ).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        response = client.post("/epcis/capture", content=body)
        if response.status_code != 202:
            raise RuntimeError(f"EPCIS capture: {response.status_code} {response.text}")
        job = client.get(response.headers["location"]).json()
        elapsed = time.perf_counter() - started
    if not job["success"]:
        raise RuntimeError(f"EPCIS capture job failed: {job['errors']}")
    print(
        f"{'':8} EPCIS document of {count} events ({len(body) / 1e6:.1f} MB): captured in "
        f"{elapsed:.1f} s, {count / elapsed:,.0f} events/s"
    )


def profile_capture(events: int) -> None:
    """Where the time goes: cProfile of the capture service in-process on SQLite, batch by
    batch, from the JSON body (parsed as the route does) to the commit; top functions by
    cumulative time. HTTP itself (uvicorn, the load generator) is not in it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from pydantic import TypeAdapter
    from sqlmodel import Session

    from medtrace.db import create_db_engine, upgrade_schema
    from medtrace.demo import PARTICIPANTS
    from medtrace.models import Role
    from medtrace.protocol.keys import b64
    from medtrace.scanners.station import Station
    from medtrace.schemas.capture import EnvelopeIn
    from medtrace.services.capture import ReplayWindow, capture_envelopes
    from medtrace.services.devices import STATIONS, register
    from medtrace.services.registry import create_participant

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'profile.db'}")
        upgrade_schema(engine)
        maker = next(p for p in PARTICIPANTS if p.role is Role.MANUFACTURER)
        station = Station("profile-1", maker.gln, Ed25519PrivateKey.generate())
        with Session(engine, expire_on_commit=False) as session:
            participant = create_participant(
                session=session,
                gln=maker.gln,
                name=maker.name,
                role=maker.role,
                company_prefix=maker.company_prefix,
            ).participant
        with Session(engine, expire_on_commit=False) as session:
            register(
                session=session,
                kind=STATIONS,
                participant=participant,
                device_id=station.station_id,
                public_key=b64(public_key_raw(station.key)),
            )
        bodies = [
            json.dumps(
                [
                    station.commission(GTIN, f"P{i + n:08d}", lot=LOT, expiry=EXPIRY)
                    for n in range(BATCH)
                ]
            ).encode()
            for i in range(0, events, BATCH)
        ]
        envelopes_of = TypeAdapter(list[EnvelopeIn])
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for body in bodies:
            with Session(engine, expire_on_commit=False) as session:
                capture_envelopes(
                    session=session,
                    participant=participant,
                    envelopes=envelopes_of.validate_json(body),
                    replay=ReplayWindow(dt.timedelta(days=1), dt.timedelta(days=30)),
                )
        profiler.disable()
        elapsed = time.perf_counter() - started
        print(f"profile: {events} events through the capture service in {elapsed:.2f} s")
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        print(text.getvalue())
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--profile", action="store_true", help="add a cProfile summary")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    for backend in args.backends.split(","):
        run_backend(backend, args.events, args.api_processes, args.connections)
    if args.profile:
        profile_capture(min(args.events, 5_000))


if __name__ == "__main__":
    main()
