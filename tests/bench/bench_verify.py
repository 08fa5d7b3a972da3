"""Verify page latency: the JSON and the HTML of one unit under concurrent clients.

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``), enrols
the test chain, fills the store with ``--events`` commissioning events of other units (in
batches of 1 000 through the capture API), moves one unit along the whole chain (6 events) and
waits for the checkpoint that covers everything. Then ``--clients`` load-generator processes
ask for that unit's verify URL for ``--seconds``, half as JSON and half as HTML, each on its
own keep-alive connection, and the script prints p50/p99 latency and requests/s per kind.
``--workers`` runs the server with that many worker processes; ``--store DIR`` keeps the
filled SQLite store in DIR and reuses it on later runs (a million events take minutes).
``--wrk`` loads the server with Debian's ``wrk`` instead (one process per kind, ``--clients``
connections each): a C load generator leaves more of the 2 cores to the server than Python
processes do.

    .venv/bin/python tests/bench/bench_verify.py [--events 20000] [--clients 4] [--seconds 10]
        [--workers 1] [--store DIR] [--backend sqlite|postgres] [--wrk]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]

from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path
from support.chain import EXPIRY, LOT, make_chain, new_serial
from support.live import LiveServer, start_server

FILL_BATCH = 1000
KINDS = {"json": {"Accept": "application/json"}, "html": {"Accept": "text/html"}}


def _client(url: str, kind: str, seconds: float) -> list[float]:
    """One load generator: request ``url`` back to back; the latencies in ms."""
    latencies: list[float] = []
    with httpx.Client(headers=KINDS[kind], timeout=30) as client:
        client.get(url).raise_for_status()
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            start = time.perf_counter()
            response = client.get(url)
            latencies.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
    return latencies


def _wrk(url: str, clients: int, seconds: float) -> None:
    """Load both kinds at once with ``wrk`` and print its requests/s and p50/p99."""
    runs = {
        kind: subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{seconds:.0f}s",
                "--latency",
                "-H",
                f"Accept: {headers['Accept']}",
                url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind, headers in KINDS.items()
    }
    for kind, run in runs.items():
        out, _ = run.communicate()
        if run.returncode or "Non-2xx" in out:
            raise RuntimeError(f"wrk ({kind}) failed:\n{out}")
        found = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
        rate = re.search(r"^Requests/sec:\s+(\S+)$", out, re.MULTILINE)
        assert rate is not None and found.keys() == {"50", "99"}, out
        print(
            f"verify {kind:4}: {float(rate.group(1)):7.0f} req/s  "
            f"p50 {found['50']:>8}  p99 {found['99']:>8}  (wrk)"
        )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class FilledStore:
    """A store filled for the benchmark and the unit whose page is asked for; kept in
    ``--store DIR`` (SQLite) so that later runs need not fill a million events again."""

    database_url: str
    data_dir: Path
    unit_path: str

    def save(self, folder: Path) -> None:
        record = {"database_url": self.database_url, "unit_path": self.unit_path}
        (folder / "store.json").write_text(json.dumps(record))

    @classmethod
    def load(cls, folder: Path) -> FilledStore | None:
        path = folder / "store.json"
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        return cls(record["database_url"], folder / "data", record["unit_path"])


def _fill(server: LiveServer, events: int) -> str:
    """Commission ``events`` units, move one along the whole chain; that unit's verify path."""
    with make_chain(server) as chain:
        prefix = secrets.token_hex(3).upper()
        for start in track(range(0, events, FILL_BATCH), description="filling the store"):
            envelopes = [
                chain.maker.station.commission(GTIN, f"F{prefix}{i:09d}", lot=LOT, expiry=EXPIRY)
                for i in range(start, min(start + FILL_BATCH, events))
            ]
            chain.maker.api.capture(envelopes)
        serial = new_serial()
        chain.to_pharmacy(serial)
        chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, serial)])
    server.wait_for_checkpoint(server.leaves(), timeout=600)
    return digital_link_path(GTIN, serial, lot=LOT, expiry=EXPIRY)


def main() -> None:
    """Fill (or reuse a filled store), load and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4, help="load generators per kind")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="medtrace serve --workers")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--store", type=Path, help="keep the filled SQLite store here and reuse it next time"
    )
    parser.add_argument("--wrk", action="store_true", help="load with wrk (apt-get install wrk)")
    args = parser.parse_args()
    if args.store and args.backend != "sqlite":
        parser.error("--store keeps a SQLite store; PostgreSQL is filled afresh each run")

    with ExitStack() as stack:
        folder = args.store or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        store = FilledStore.load(folder)
        fill_started = time.monotonic()
        if store is None:
            database_url = stack.enter_context(_database(args.backend, folder))
            filler = start_server(database_url=database_url, data_dir=folder / "data")
            try:
                store = FilledStore(database_url, folder / "data", _fill(filler, args.events))
            finally:
                filler.stop()
            if args.store:
                store.save(folder)
        filled = time.monotonic() - fill_started
        server = start_server(
            database_url=store.database_url, data_dir=store.data_dir, workers=args.workers
        )
        stack.callback(server.stop)
        url = server.url + store.unit_path
        print(f"store: {server.snapshot()[1]} events ({args.backend}), filled in {filled:.0f} s")
        print(
            f"load: {args.clients} clients per kind, {args.seconds:.0f} s, keep-alive, "
            f"{args.workers} server worker(s)"
        )

        if args.wrk:
            _wrk(url, args.clients, args.seconds)
            return
        jobs = [(url, kind, args.seconds) for kind in KINDS for _ in range(args.clients)]
        with multiprocessing.Pool(len(jobs)) as pool:
            results = pool.starmap(_client, jobs)
        for kind in KINDS:
            latencies = [
                ms for (_, k, _), r in zip(jobs, results, strict=True) if k == kind for ms in r
            ]
            print(
                f"verify {kind:4}: {len(latencies) / args.seconds:7.0f} req/s  "
                f"p50 {statistics.median(latencies):6.1f} ms  "
                f"p99 {_percentile(latencies, 0.99):6.1f} ms  (n={len(latencies)})"
            )


if __name__ == "__main__":
    main()
