"""Derived-row audit rate: how many rows per second ``medtrace audit`` checks against leaves.

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``), fills the
store with ``--events`` commissioning events through the capture API (as ``bench_verify.py``
does: each makes an event row, a unit and a ledger leaf), then runs the derived-row audit
(``medtrace.services.audit.audit_derived``) over the whole store and prints the rows read, the
time, the rate and the process's peak memory (which stays flat: the audit reads in pages).
``--store DIR`` keeps the filled SQLite store in DIR and reuses it on later runs.

    .venv/bin/python tests/bench/bench_audit.py [--events 20000] [--store DIR]
        [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]
from bench_verify import FilledStore, _fill  # type: ignore[import-not-found]

from medtrace.db import create_db_engine
from medtrace.services.audit import audit_derived, count_derived
from support.live import start_server


def _filled(args: argparse.Namespace, stack: ExitStack) -> str:
    """The database URL of a store holding ``--events`` events (filled now or reused)."""
    if args.store is not None:
        folder = Path(args.store)
        folder.mkdir(parents=True, exist_ok=True)
        kept = FilledStore.load(folder)
        if kept is not None:
            return kept.database_url
    else:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    url = stack.enter_context(_database(args.backend, folder))
    server = start_server(database_url=url, data_dir=folder / "data")
    try:
        path = _fill(server, args.events)
    finally:
        server.stop()
    if args.store is not None:
        FilledStore(url, folder / "data", path).save(folder)
    return str(url)


def main() -> None:
    """Fill (or reuse) a store, audit its derived rows, print the rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--store", help="keep (and reuse) the filled SQLite store here")
    args = parser.parse_args()
    with ExitStack() as stack:
        engine = create_db_engine(_filled(args, stack))
        total = count_derived(engine)
        start = time.perf_counter()
        mismatches = sum(1 for _ in audit_derived(engine))
        seconds = time.perf_counter() - start
        engine.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"derived audit ({args.backend}): {total} rows in {seconds:.1f} s = "
        f"{total / seconds:,.0f} rows/s, {mismatches} mismatches, peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
