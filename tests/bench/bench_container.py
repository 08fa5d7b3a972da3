"""A pallet's page (``/00/{sscc}``) with 10⁵ units inside: latency and answer size.

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``), enrols
the test chain, commissions ``--units`` units spread over ``--lots`` lots (batches of 1 000
through the capture API), packs each batch into a case and every case onto one pallet, and
waits for the checkpoint. Then it asks for the pallet's page and for one case's page
``--repeat`` times each, as JSON and as HTML, and prints the median and worst latency and the
answer's size: the contents are a bounded summary, so neither grows with the units inside.

    .venv/bin/python tests/bench/bench_container.py [--units 100000] [--lots 20]
        [--repeat 20] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]

from medtrace.demo import GTIN
from support.chain import EXPIRY, Chain, make_chain, new_sscc, signed
from support.live import start_server

BATCH = 1000
KINDS = {"json": {"Accept": "application/json"}, "html": {"Accept": "text/html"}}


def _fill(chain: Chain, units: int, lots: int) -> tuple[str, str]:
    """``units`` units in cases of ``BATCH`` on one pallet; the pallet's and a case's SSCC."""
    maker = chain.maker
    prefix = secrets.token_hex(3).upper()
    cases: list[str] = []
    for start in track(range(0, units, BATCH), description="commissioning and packing"):
        serials = [f"C{prefix}{i:09d}" for i in range(start, min(start + BATCH, units))]
        maker.api.capture(
            [
                maker.station.commission(GTIN, s, lot=f"L{i % lots:03d}", expiry=EXPIRY)
                for i, s in enumerate(serials, start)
            ]
        )
        cases.append(new_sscc())
        children = [{"gtin": GTIN, "serial": s} for s in serials]
        maker.api.capture([signed(maker, "pack", sscc=cases[-1], children=children)])
    pallet = new_sscc()
    maker.api.capture([signed(maker, "pack", sscc=pallet, children=[{"sscc": c} for c in cases])])
    return pallet, cases[0]


def _measure(url: str, repeat: int) -> None:
    for kind, headers in KINDS.items():
        with httpx.Client(headers=headers, timeout=60) as client:
            times, size = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text
                size = len(response.content)
        print(
            f"  {kind:4}: median {statistics.median(times):7.1f} ms  worst {max(times):7.1f} ms"
            f"  {size / 1024:6.1f} KiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--lots", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _database(args.backend, Path(tmp)) as url:
        server = start_server(database_url=url, data_dir=Path(tmp) / "data")
        try:
            with make_chain(server) as chain:
                pallet, case = _fill(chain, args.units, args.lots)
            server.wait_for_checkpoint(server.leaves(), timeout=600)
            print(f"{args.backend}: a pallet of {args.units} units in {args.lots} lots")
            print(f"pallet /00/{pallet} ({-(-args.units // BATCH)} cases)")
            _measure(f"{server.url}/00/{pallet}", args.repeat)
            print(f"case /00/{case} ({BATCH} units)")
            _measure(f"{server.url}/00/{case}", args.repeat)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
