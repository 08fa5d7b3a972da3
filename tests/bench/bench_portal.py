"""Lot investigation latency: the regulator's portal page for a lot of 100 000 units.

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``), enrols
the test chain and a regulator, then builds one lot directly in the database through the
capture service (``capture_envelopes``, in this process, in batches of 1 000): ``--units``
commissioned units of which a fifth are shipped to the distributor and received there. Then
it asks for the lot investigation page (counts by state, holders, alerts, the first page of
units) ``--runs`` times over one logged-in keep-alive connection, then the last page of units
(keyset paging), and prints p50/p99 latency and the page size. ``--exports`` also times the
lot's exports (every event of the lot: EPCIS 2.0 JSON-LD and CSV). ``--other-events N``
first fills the store with N commissioning events of other lots (1 000 units each), so the
lot is looked up among them: ``--units 1000 --other-events 1000000 --exports`` is the query
for one lot among a million events.

    .venv/bin/python tests/bench/bench_portal.py [--units 100000] [--runs 30] [--exports]
        [--other-events 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path

import httpx
from rich.progress import track
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]

from medtrace.demo import GTIN, Enrolled, with_check_digit
from medtrace.models import Role
from medtrace.schemas.capture import EnvelopeIn
from medtrace.services.capture import ReplayWindow, capture_envelopes
from medtrace.services.registry import create_participant
from medtrace.store.participants import get_participant_by_gln
from support.chain import EXPIRY, make_chain
from support.live import LiveServer, start_server

BATCH = 1000
#: Every envelope is signed just now: the replay window never refuses one.
REPLAY = ReplayWindow(dt.timedelta(days=1), dt.timedelta(days=30))


def _capture(server: LiveServer, member: Enrolled, envelopes: Iterable[dict[str, object]]) -> None:
    """Record signed envelopes through the capture service, one transaction per batch
    (signed as they are needed: a million envelopes would not fit in memory at once)."""
    with Session(server.engine) as session:
        participant = get_participant_by_gln(session=session, gln=member.gln)
        assert participant is not None
        session.expunge(participant)
    pending = iter(envelopes)
    while batch := [EnvelopeIn.model_validate(e) for e in itertools.islice(pending, BATCH)]:
        with Session(server.engine) as session:
            capture_envelopes(
                session=session, participant=participant, envelopes=batch, replay=REPLAY
            )


def _timed(get: Callable[[], httpx.Response], runs: int) -> tuple[list[float], int]:
    """Latencies in ms of ``runs`` requests (after one warm-up), and the last body's size."""
    get().raise_for_status()
    latencies, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = get()
        latencies.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return latencies, size


def _report(what: str, latencies: list[float], size: int) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(
        f"{what}: p50 {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms, "
        f"{size / 1024:.0f} KiB, {len(ordered)} runs"
    )


def main() -> None:
    """Build the lot, log in, time the pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--exports", action="store_true", help="also time the lot's exports")
    parser.add_argument(
        "--other-events", type=int, default=0, help="commission this many units of other lots first"
    )
    args = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = stack.enter_context(_database(args.backend, folder))
        server = start_server(database_url=database_url, data_dir=folder / "data")
        stack.callback(server.stop)
        chain = stack.enter_context(make_chain(server))
        with Session(server.engine) as session:
            regulator = create_participant(
                session=session,
                gln=with_check_digit("952999900001"),
                name="Bench Regulator",
                role=Role.REGULATOR,
            )
        lot, prefix = f"BENCH{secrets.token_hex(2).upper()}", secrets.token_hex(3).upper()
        serials = [f"U{prefix}{i:08d}" for i in range(args.units)]
        maker, hub = chain.maker, chain.hub
        if args.other_events:
            started = time.monotonic()
            others = (
                maker.station.commission(
                    GTIN, f"O{prefix}{i:09d}", lot=f"O{i // 1000}", expiry=EXPIRY
                )
                for i in range(args.other_events)
            )
            _capture(
                server, maker, track(others, description="other lots", total=args.other_events)
            )
            print(
                f"store: {args.other_events} events of other lots, "
                f"built in {time.monotonic() - started:.0f} s on {args.backend}"
            )
        started = time.monotonic()
        _capture(
            server,
            maker,
            [maker.station.commission(GTIN, s, lot=lot, expiry=EXPIRY) for s in serials],
        )
        moved = serials[: args.units // 5]
        _capture(server, maker, [maker.station.ship(GTIN, s, to=hub.gln) for s in moved])
        _capture(server, hub, [hub.station.receive(GTIN, s) for s in moved])
        print(
            f"lot {lot}: {args.units} units ({len(moved)} at the distributor), "
            f"built in {time.monotonic() - started:.0f} s on {args.backend}"
        )

        with httpx.Client(base_url=server.url, timeout=120) as client:
            form = client.get("/portal/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            client.post("/portal/login", data={"csrf": csrf.group(1), "token": regulator.token})
            params = {"gtin": GTIN, "lot": lot}
            first = client.get("/portal", params=params)
            assert f"{args.units} units in lot {lot}" in first.text, first.text[:2000]
            _report(
                "lot investigation, first page",
                *_timed(lambda: client.get("/portal", params=params), args.runs),
            )
            last = {**params, "after": serials[-300]}
            _report(
                "lot investigation, last page",
                *_timed(lambda: client.get("/portal", params=last), args.runs),
            )
            if args.exports:
                runs = max(3, args.runs if args.units <= 10_000 else 3)
                for kind in ("jsonld", "csv"):
                    path = f"/portal/lots/{GTIN}/{lot}/events.{kind}"
                    _report(f"lot export ({kind})", *_timed(lambda p=path: client.get(p), runs))


if __name__ == "__main__":
    main()
