"""Scans per second at a station, end to end: wedge text in, verdict shown, event acknowledged.

Run: .venv/bin/python tests/bench/bench_scan.py [--units 2000] [--interactive 300]

Starts a real server on SQLite (its own process), enrols the test chain, ships ``--units``
units to the distributor, then runs ``medtrace scan --mode receive`` as the distributor's
station in its own process, as a dock would:

- interactive: one code typed at a time, the next only once the previous scan's line is
  shown (a person at the dock); prints p50/p99 of the time from Enter to the result line,
  which includes the verify lookup, signing, the outbox's fsync and the capture round trip;
- piped: every code written at once (a scanner's batch upload); prints scans/s from the
  first code to the process's exit with everything acknowledged.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medtrace.demo import GTIN
from medtrace.protocol.identifiers import GS1Data
from medtrace.scanners.outbox import Outbox, Status
from support.chain import EXPIRY, LOT, Chain, make_chain
from support.live import MEDTRACE, start_server
from support.station import scan_station


def _typed(serial: str) -> str:
    code = GS1Data(gtin=GTIN, serial=serial, lot=LOT, expiry=EXPIRY)
    return "]d2" + code.element_string() + "\n"


def _interactive(chain: Chain, folder: Path, serials: list[str]) -> None:
    station = scan_station(chain.hub, chain.server.url, folder, "dock-interactive")
    process = subprocess.Popen(
        [str(MEDTRACE), "scan", "--mode", "receive"],
        env=station.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdout.readline()  # the station's greeting
    latencies = []
    for serial in serials:
        start = time.perf_counter()
        process.stdin.write(_typed(serial))
        process.stdin.flush()
        line = process.stdout.readline()
        latencies.append(time.perf_counter() - start)
        assert " OK " in line and "received" in line, line
    process.stdin.close()
    process.stdout.read()
    process.stdout.close()
    process.wait()
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"interactive: {len(serials)} scans, Enter to acknowledged result: "
        f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms "
        f"= {len(serials) / sum(latencies):.0f} scans/s for one person"
    )


def _piped(chain: Chain, folder: Path, serials: list[str]) -> None:
    station = scan_station(chain.hub, chain.server.url, folder, "dock-piped")
    start = time.perf_counter()
    done = station.run("--mode", "receive", codes=[_typed(s).strip() for s in serials])
    took = time.perf_counter() - start
    counts = Outbox(station.outbox).counts()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert counts[Status.SENT] == len(serials), counts
    print(
        f"piped: {len(serials)} scans in {took:.1f} s = {len(serials) / took:.0f} scans/s "
        "end to end (all acknowledged)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=2_000, help="scans piped at once")
    parser.add_argument("--interactive", type=int, default=300, help="scans typed one by one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        server = start_server(
            database_url=f"sqlite:///{folder / 'medtrace.db'}", data_dir=folder / "server"
        )
        try:
            with make_chain(server) as chain:
                serials = chain.ship_to_hub(args.units + args.interactive)
                _interactive(chain, folder, serials[: args.interactive])
                _piped(chain, folder, serials[args.interactive :])
        finally:
            server.stop()


if __name__ == "__main__":
    main()
