"""Ledger speed: append + integrate, roots and proofs from the stored tree, and the audit.

One run, side by side with pymerkle (its in-memory tree and its SQLite tree, the same leaves):

1. **The limit**: hashlib SHA-256 on this core over leaf-sized inputs (0x00 || leaf) and
   node inputs (0x01 || 64 bytes). Integrating a leaf costs one of each, so
   ``1 / (t_leaf + t_node)`` leaves/s is the ceiling of one core.
2. **Append + integrate, durable on SQLite** (WAL, ``synchronous=FULL``; every transaction is
   on disk when it commits) through the ledger's own code path: ``ledger.append_leaves``
   in transactions of ``--batch`` leaves, each followed by ``Sequencer.integrate`` (tiles,
   root, signed checkpoint). Where the time goes: appending (leaf hash + insert) vs integrating.
3. **pymerkle 7**: ``InmemoryTree.append_entries`` and ``SqliteTree.append_entries``.
4. **Root, inclusion and consistency proofs** for random tree sizes at 10^4, 10^5 and 10^6
   leaves, median over many requests, from the stored tree vs pymerkle's SQLite tree.
5. **Audit** of the whole 10^6-leaf log from the database (every leaf re-hashed, every tile,
   checkpoint signature and consistency checked), and, on a log of signed custody envelopes,
   the same audit with every station signature checked.

    .venv/bin/python tests/bench/bench_ledger.py [--leaves 1000000] [--batch 50000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymerkle import InmemoryTree, SqliteTree
from sqlalchemy import Engine

from medtrace import ledger
from medtrace.cli.ledger import DatabaseSource, envelope_problem
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.ledger import NoteSigner, NoteVerifier, Sequencer, audit
from medtrace.protocol.envelope import leaf_bytes, sign_event

LEAF_SIZE = 256
ORIGIN = "bench.example/log"


def make_leaves(count: int) -> list[bytes]:
    """Distinct leaves of LEAF_SIZE bytes (the size of a custody envelope, roughly)."""
    pad = os.urandom(LEAF_SIZE)
    return [i.to_bytes(8, "big") + pad[8:] for i in range(count)]


def sha256_limit(leaves: list[bytes]) -> tuple[float, float]:
    """Seconds per leaf hash and per node hash, hashlib on one core, as the ledger calls it."""
    sha = hashlib.sha256
    sample = leaves[:200_000]
    start = time.perf_counter()
    [sha(b"\x00" + d).digest() for d in sample]
    t_leaf = (time.perf_counter() - start) / len(sample)
    blob = os.urandom(64 * 100_000)
    start = time.perf_counter()
    [sha(b"\x01" + blob[i : i + 64]).digest() for i in range(0, len(blob), 64)]
    t_node = (time.perf_counter() - start) / 100_000
    return t_leaf, t_node


def new_log(folder: Path, name: str) -> Engine:
    engine = create_db_engine(f"sqlite:///{folder / name}")
    upgrade_schema(engine)
    return engine


def fill(
    engine: Engine, sequencer: Sequencer, leaves: list[bytes], batch: int
) -> tuple[float, float]:
    """Append and integrate every leaf; return (seconds appending, seconds integrating)."""
    appending = integrating = 0.0
    for first in range(0, len(leaves), batch):
        start = time.perf_counter()
        with engine.begin() as conn:
            ledger.begin_append(conn)
            ledger.append_leaves(conn, leaves[first : first + batch])
        middle = time.perf_counter()
        sequencer.integrate()
        appending += middle - start
        integrating += time.perf_counter() - middle
    return appending, integrating


def fill_concurrently(engine: Engine, signer: NoteSigner, leaves: list[bytes], batch: int) -> float:
    """Append on this thread while ``Sequencer.run`` integrates on its own, as the API process
    runs them; return the seconds until every leaf is integrated."""
    stop = threading.Event()
    sequencer = Sequencer(engine, signer, batch_interval=0.05, batch_size=batch)
    worker = threading.Thread(target=sequencer.run, args=(stop,))
    start = time.perf_counter()
    worker.start()
    try:
        for first in range(0, len(leaves), batch):
            with engine.begin() as conn:
                ledger.begin_append(conn)
                ledger.append_leaves(conn, leaves[first : first + batch])
        while True:
            with engine.connect() as conn:
                if ledger.integrated_size(conn) == len(leaves):
                    return time.perf_counter() - start
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join()


def median_ms(samples: int, operation: Callable[[], object]) -> float:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        operation()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def proofs(engine: Engine, tree: SqliteTree, size: int, samples: int, peer_samples: int) -> None:
    """Median root, inclusion and consistency times at random sizes up to ``size``."""
    rng = random.Random(size)

    def draw() -> tuple[int, int, int]:
        """A tree size n, a leaf index below n and an older size 0 < m < n."""
        n = rng.randint(2, size)
        return n, rng.randrange(n), rng.randint(1, n - 1)

    with engine.connect() as conn:

        def our_root() -> object:
            return ledger.root_at(conn, draw()[0])

        def our_inclusion() -> object:
            n, i, _ = draw()
            return ledger.inclusion_proof_at(conn, i, n)

        def our_consistency() -> object:
            n, _, m = draw()
            return ledger.consistency_proof_at(conn, m, n)

        ours = {
            "root": median_ms(samples, our_root),
            "inclusion": median_ms(samples, our_inclusion),
            "consistency": median_ms(samples, our_consistency),
        }

    def peer_root() -> object:
        return tree.get_root(draw()[0])

    def peer_inclusion() -> object:
        n, i, _ = draw()
        return tree.prove_inclusion(i + 1, n)  # pymerkle counts leaves from 1

    def peer_consistency() -> object:
        n, _, m = draw()
        return tree.prove_consistency(m, n)

    theirs = {
        "root": median_ms(peer_samples, peer_root),
        "inclusion": median_ms(peer_samples, peer_inclusion),
        "consistency": median_ms(peer_samples, peer_consistency),
    }
    for what in ("root", "inclusion", "consistency"):
        print(
            f"  {size:>9,} leaves  {what:<12} medtrace {ours[what]:8.3f} ms   "
            f"pymerkle SQLite {theirs[what]:9.3f} ms   ×{theirs[what] / ours[what]:,.0f}"
        )


def pymerkle_sqlite(folder: Path, leaves: list[bytes]) -> tuple[SqliteTree, float]:
    tree = SqliteTree(str(folder / f"pymerkle-{len(leaves)}.db"))
    start = time.perf_counter()
    tree.append_entries(leaves)
    return tree, time.perf_counter() - start


def signed_envelope_log(
    folder: Path, count: int, signer: NoteSigner
) -> tuple[Engine, dict[str, list[bytes]]]:
    """A log of ``count`` real signed custody envelopes (one station)."""
    key = Ed25519PrivateKey.generate()
    leaves = []
    for i in range(count):
        event = {
            "type": "commission",
            "gtin": "09521234000112",
            "serial": f"S{i:09d}",
            "gln": "9521234000006",
            "event_time": "2026-11-22T10:00:00.000Z",
            "station_id": "line-1",
            "lot": "L1",
            "expiry": "2028-01-31",
        }
        leaves.append(leaf_bytes(sign_event(event, station_id="line-1", key=key)))
    engine = new_log(folder, "envelopes.db")
    fill(engine, Sequencer(engine, signer), leaves, 50_000)
    return engine, {"line-1": [key.public_key().public_bytes_raw()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--envelopes", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    leaves = make_leaves(args.leaves)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, leaves of {LEAF_SIZE} bytes")

    t_leaf, t_node = sha256_limit(leaves)
    ceiling = 1 / (t_leaf + t_node)
    print("\n1. SHA-256 (hashlib, one core)")
    print(f"  leaf hash {t_leaf * 1e6:.2f} µs, node hash {t_node * 1e6:.2f} µs")
    print(f"  ceiling: {ceiling:,.0f} leaves/s (one leaf hash + one node hash per leaf)")

    print(f"\n2. medtrace append + integrate, SQLite WAL synchronous=FULL, {args.leaves:,} leaves")
    engine = new_log(folder, "medtrace.db")
    appending, integrating = fill(engine, Sequencer(engine, signer), leaves, args.batch)
    total = appending + integrating
    rate = args.leaves / total
    print(f"  {rate:,.0f} leaves/s  ({rate / ceiling:.0%} of the SHA-256 ceiling)")
    print(
        f"  time: append {appending:.2f} s (leaf hash + insert), integrate {integrating:.2f} s "
        f"(read hashes, node hashes, tiles, checkpoint)"
    )

    concurrent = new_log(folder, "medtrace-concurrent.db")
    rate = args.leaves / fill_concurrently(concurrent, signer, leaves, args.batch)
    print(f"  {rate:,.0f} leaves/s with the sequencer in its own thread (as in medtrace serve)")
    concurrent.dispose()

    print(f"\n3. pymerkle 7, {args.leaves:,} leaves")
    start = time.perf_counter()
    InmemoryTree().append_entries(leaves)
    rate = args.leaves / (time.perf_counter() - start)
    print(f"  InmemoryTree.append_entries  {rate:,.0f} leaves/s (nothing on disk)")
    peer, seconds = pymerkle_sqlite(folder, leaves)
    rate = args.leaves / seconds
    print(f"  SqliteTree.append_entries    {rate:,.0f} leaves/s (leaves only; hashed when asked)")

    print(
        "\n4. median per request, random tree sizes (medtrace: stored tiles; pymerkle: SqliteTree)"
    )
    for size in (10_000, 100_000, 1_000_000):
        if size > args.leaves:
            break
        if size == args.leaves:
            small_engine, small_peer = engine, peer
        else:
            small_engine = new_log(folder, f"medtrace-{size}.db")
            fill(small_engine, Sequencer(small_engine, signer), leaves[:size], args.batch)
            small_peer = pymerkle_sqlite(folder, leaves[:size])[0]
        proofs(small_engine, small_peer, size, samples=500, peer_samples=20 if size < 10**6 else 7)

    print("\n5. audit")
    verifier = NoteVerifier.from_vkey(signer.vkey)
    start = time.perf_counter()
    findings = audit(DatabaseSource(engine), verifier)
    seconds = time.perf_counter() - start
    assert not findings, findings
    print(
        f"  {args.leaves:,} opaque leaves: {args.leaves / seconds:,.0f} leaves/s ({seconds:.1f} s)"
    )
    envelope_engine, keys = signed_envelope_log(folder, args.envelopes, signer)
    start = time.perf_counter()
    findings = audit(
        DatabaseSource(envelope_engine),
        verifier,
        check_leaf=lambda _i, data: envelope_problem(data, keys.get),
    )
    seconds = time.perf_counter() - start
    assert not findings, findings
    print(
        f"  {args.envelopes:,} signed custody envelopes, station signatures checked: "
        f"{args.envelopes / seconds:,.0f} leaves/s"
    )


if __name__ == "__main__":
    main()
