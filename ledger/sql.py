"""The log in a SQL database (SQLite or PostgreSQL), through SQLAlchemy Core.

Leaves get their index inside the writer's own transaction: ``append_leaves`` bumps a single
counter row and inserts the leaves, so an index is dense, gapless and durable the moment the
writer commits, and a rolled-back writer leaves no hole. On PostgreSQL the counter's row lock
orders concurrent writers, so committed leaves always form a prefix ``[0, size)``: that is what
lets the sequencer integrate without ever skipping or repeating a leaf.

The tree is stored as C2SP tlog-tiles (``_tree.py``): one row per tile of up to 256 hashes in
``ledger_tiles``, and the integrated size in ``ledger_tree``. ``integrate`` extends the right
edge of the tree with the newly committed leaves only, inside a transaction that also moves the
integrated size (compare-and-set on a locked row, so two integrations can never both apply).
A root or a proof for any integrated size reads O(log n) tiles in one query.

``__all__`` is the log's storage interface: the package re-exports it, the application's
services and migrations use it through ``medtrace.ledger``, and the sequencer calls the same
functions. Each takes the caller's ``Connection`` and never commits, so a leaf and the rows
derived from it commit together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)

from ._tree import (
    TILE_WIDTH,
    StoredTile,
    TileKey,
    consistency_ranges,
    encode_entry_bundle,
    extend_tiles,
    hash_ranges,
    inclusion_ranges,
    tiles_at_edge,
)
from .bulk import insert_rows, placeholder
from .hashing import EMPTY_ROOT, HASH_SIZE, LEAF_PREFIX

__all__ = [
    "StoredCheckpoint",
    "TreeMoved",
    "append_leaves",
    "begin_append",
    "checkpoints",
    "committed_size",
    "consistency_proof_at",
    "entry_bundle",
    "inclusion_proof_at",
    "inclusion_proofs_at",
    "initial_rows",
    "initial_tree_rows",
    "integrate",
    "integrated_size",
    "latest_checkpoint",
    "latest_checkpoint_time",
    "leaf_data",
    "leaves_at",
    "leaves_table",
    "ledger_metadata",
    "read_stored_tiles",
    "read_tile",
    "recent_checkpoints",
    "root_at",
    "store_checkpoint",
    "store_cosignature",
]

ledger_metadata = MetaData()

leaves_table = Table(
    "ledger_leaves",
    ledger_metadata,
    # INTEGER on SQLite makes the index the rowid (64-bit there too): one B-tree, not two.
    Column(
        "idx",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

head_table = Table(
    "ledger_head",
    ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_index", BigInteger, nullable=False),
)

checkpoints_table = Table(
    "ledger_checkpoints",
    ledger_metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tiles_table = Table(
    "ledger_tiles",
    ledger_metadata,
    Column("level", SmallInteger, nullable=False, autoincrement=False),
    Column("idx", BigInteger, nullable=False, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
    # A full tile's inner nodes (heights 1..7, ``_tree.tile_inner``), so that proofs slice
    # instead of rehashing; NULL for a partial tile.
    Column("inner_nodes", LargeBinary, nullable=True),
    PrimaryKeyConstraint("level", "idx"),
)

tree_table = Table(
    "ledger_tree",
    ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

cosignatures_table = Table(
    "ledger_cosignatures",
    ledger_metadata,
    Column("size", BigInteger, nullable=False, autoincrement=False),
    Column("witness", Text, nullable=False),
    Column("line", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("size", "witness"),
)

_HEAD_ID = 1
_TREE_ID = 1


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: its size, root and the signed note text.

    When read back, ``note`` carries the witnesses' cosignature lines after the log's own
    signature (still a valid C2SP signed note).
    """

    size: int
    root_hash: bytes
    note: str


class TreeMoved(RuntimeError):
    """Another integration changed the stored tree under this one (a sequencer lost its lock)."""


def initial_rows() -> list[dict[str, int]]:
    """The counter row a new log starts with (written by the schema migration)."""
    return [{"id": _HEAD_ID, "next_index": 0}]


def initial_tree_rows() -> list[dict[str, int]]:
    """The stored tree's size row a new log starts with (written by the schema migration)."""
    return [{"id": _TREE_ID, "size": 0}]


# Appending ----------------------------------------------------------------------------------


def begin_append(conn: Connection) -> None:
    """Take the write lock now, on SQLite, in a transaction that will append.

    SQLite allows one writer; a transaction that reads first and writes later can fail when
    another writer commits in between. Writing first makes every later read in the same
    transaction see a stable database. PostgreSQL needs nothing: ``append_leaves`` takes its
    row lock as late as possible, so concurrent writers overlap for as long as they can.
    """
    if conn.dialect.name == "sqlite":
        conn.execute(
            update(head_table)
            .where(head_table.c.id == _HEAD_ID)
            .values(next_index=head_table.c.next_index)
        )


def append_leaves(conn: Connection, data: Sequence[bytes]) -> int:
    """Append leaves in the caller's transaction; return the index of the first one."""
    count = len(data)
    if count == 0:
        raise ValueError("append_leaves needs at least one leaf")
    end = conn.execute(
        update(head_table)
        .where(head_table.c.id == _HEAD_ID)
        .values(next_index=head_table.c.next_index + count)
        .returning(head_table.c.next_index)
    ).scalar_one()
    first = int(end) - count
    # The hot path of capture and of bulk loads.
    sha256, prefix = hashlib.sha256, LEAF_PREFIX  # leaf_hash, inlined: this loop is the hot one
    insert_rows(
        conn,
        leaves_table,
        ("idx", "leaf_hash", "data"),
        [(first + i, sha256(prefix + d).digest(), d) for i, d in enumerate(data)],
    )
    return first


def committed_size(conn: Connection) -> int:
    """How many leaves are committed (integrated or not)."""
    return int(
        conn.execute(
            select(head_table.c.next_index).where(head_table.c.id == _HEAD_ID)
        ).scalar_one()
    )


def leaf_data(conn: Connection, start: int, end: int) -> list[tuple[int, bytes]]:
    """The leaves with ``start <= index < end``, in order."""
    rows = conn.execute(
        select(leaves_table.c.idx, leaves_table.c.data)
        .where(leaves_table.c.idx >= start, leaves_table.c.idx < end)
        .order_by(leaves_table.c.idx)
    )
    return [(int(i), bytes(d)) for i, d in rows]


def leaves_at(conn: Connection, indexes: Sequence[int]) -> dict[int, bytes]:
    """The leaves at the given indexes, by index."""
    if not indexes:
        return {}
    rows = conn.execute(_LEAVES_AT, {"indexes": list(indexes)})
    return {int(i): bytes(d) for i, d in rows}


def stored_leaf_hashes(conn: Connection, start: int, end: int) -> bytes:
    """The stored hashes of leaves ``[start, end)``, concatenated.

    Raises:
        RuntimeError: if a leaf in the range is missing.
    """
    # A plain DB-API cursor in the caller's transaction: the sequencer reads every new leaf
    # hash here, and SQLAlchemy's row processing would cost more than the hashing.
    mark = placeholder(conn)
    rows = _fetch(
        conn,
        f"SELECT leaf_hash FROM {leaves_table.name} WHERE idx >= {mark} AND idx < {mark} "
        "ORDER BY idx",
        (start, end),
    )
    blob = b"".join([bytes(row[0]) for row in rows])
    if len(blob) != (end - start) * HASH_SIZE:
        raise RuntimeError(f"the log is missing leaves in [{start}, {end})")
    return blob


# The stored tree ----------------------------------------------------------------------------


def integrated_size(conn: Connection) -> int:
    """How many leaves the stored tree holds."""
    mark = placeholder(conn)
    rows = _fetch(conn, f"SELECT size FROM {tree_table.name} WHERE id = {mark}", (_TREE_ID,))
    return int(rows[0][0])


def read_tiles(conn: Connection, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
    """The stored tiles with the given ``(level, index)`` keys (missing ones are left out)."""
    return {key: blob for key, (blob, _) in read_stored_tiles(conn, keys).items()}


def read_stored_tiles(conn: Connection, keys: Iterable[TileKey]) -> dict[TileKey, StoredTile]:
    """The stored tiles with these keys, each with its inner nodes when it is full."""
    by_level: dict[int, list[int]] = {}
    for level, index in set(keys):
        by_level.setdefault(level, []).append(index)
    if not by_level:
        return {}
    # One (level = L AND idx IN (...)) per level, which both databases answer from the primary
    # key (SQLite scans the table for a row-value IN); plain DB-API, as proofs are read often.
    mark = placeholder(conn)
    clauses, params = [], []
    for level, indexes in sorted(by_level.items()):
        clauses.append(f"(level = {mark} AND idx IN ({', '.join([mark] * len(indexes))}))")
        params += [level, *sorted(indexes)]
    where = " OR ".join(clauses)
    rows = _fetch(
        conn,
        f"SELECT level, idx, hashes, inner_nodes FROM {tiles_table.name} WHERE {where}",
        params,
    )
    return {
        (int(level), int(index)): (bytes(blob), None if inner is None else bytes(inner))
        for level, index, blob, inner in rows
    }


def _fetch(conn: Connection, statement: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """Rows of a statement run on the DB-API cursor, in the caller's transaction."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement, tuple(params))
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def read_tile(conn: Connection, level: int, index: int, width: int) -> bytes | None:
    """The first ``width`` hashes of a tile, or None if the stored tree has fewer."""
    blob = read_tiles(conn, [(level, index)]).get((level, index), b"")
    return blob[: width * HASH_SIZE] if len(blob) >= width * HASH_SIZE else None


def integrate(conn: Connection, *, limit: int) -> tuple[int, int] | None:
    """Integrate up to ``limit`` committed leaves into the stored tree, in the caller's transaction.

    Returns the old and the new integrated size, or None when no committed leaf is waiting.
    Only the new leaves' hashes and the right edge of the tree are read; the tiles that change
    are written and the integrated size moves, all in the caller's transaction.

    Raises:
        TreeMoved: if another integration moved the tree meanwhile (nothing is written then,
            once the caller rolls back).
    """
    if conn.dialect.name == "sqlite":  # take the write lock first (see begin_append)
        conn.execute(
            update(tree_table).where(tree_table.c.id == _TREE_ID).values(size=tree_table.c.size)
        )
    size0 = int(
        conn.execute(
            select(tree_table.c.size).where(tree_table.c.id == _TREE_ID).with_for_update()
        ).scalar_one()
    )
    size1 = min(committed_size(conn), size0 + limit)
    if size1 <= size0:
        return None
    edge = read_tiles(conn, tiles_at_edge(size0))
    inner: dict[TileKey, bytes] = {}
    changed = extend_tiles(size0, edge, stored_leaf_hashes(conn, size0, size1), inner)
    _write_tiles(conn, changed, inner, existing=edge.keys())
    moved = conn.execute(
        update(tree_table)
        .where(tree_table.c.id == _TREE_ID, tree_table.c.size == size0)
        .values(size=size1)
    )
    if moved.rowcount != 1:
        raise TreeMoved(f"the stored tree is no longer at size {size0}")
    return size0, size1


def _write_tiles(
    conn: Connection,
    tiles: Mapping[TileKey, bytes],
    inner: Mapping[TileKey, bytes],
    *,
    existing: Iterable[TileKey],
) -> None:
    old = set(existing)
    updates = [
        {"l": k[0], "i": k[1], "h": v, "n": inner.get(k)} for k, v in tiles.items() if k in old
    ]
    inserts = [
        {"level": k[0], "idx": k[1], "hashes": v, "inner_nodes": inner.get(k)}
        for k, v in tiles.items()
        if k not in old
    ]
    if updates:
        conn.execute(
            update(tiles_table)
            .where(tiles_table.c.level == bindparam("l"), tiles_table.c.idx == bindparam("i"))
            .values(hashes=bindparam("h"), inner_nodes=bindparam("n")),
            updates,
        )
    if inserts:
        conn.execute(insert(tiles_table), inserts)


def _hash_ranges(conn: Connection, ranges: Sequence[tuple[int, int]], size: int) -> list[bytes]:
    if size > integrated_size(conn):
        raise ValueError(f"the stored tree does not reach size {size} yet")
    return hash_ranges(ranges, lambda keys: read_stored_tiles(conn, keys))


def root_at(conn: Connection, size: int) -> bytes:
    """The root hash of the first ``size`` leaves, from the stored tree (O(log n) reads).

    Raises:
        ValueError: if ``size`` is negative or beyond the integrated size.
    """
    if size < 0:
        raise ValueError("a tree size is not negative")
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges(conn, [(0, size)], size)[0]


def inclusion_proof_at(conn: Connection, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return inclusion_proofs_at(conn, [index], size)[index]


def inclusion_proofs_at(
    conn: Connection, indexes: Sequence[int], size: int
) -> dict[int, list[bytes]]:
    """Inclusion proofs of several leaves in one tree, reading the tiles they need once.

    Raises:
        ValueError: unless ``0 <= index < size <= integrated size`` for every index.
    """
    if not indexes:
        return {}
    wanted = sorted(set(indexes))
    for index in wanted:
        if not 0 <= index < size:
            raise ValueError(f"an inclusion proof needs 0 <= index < size, got {index}, {size}")
    per_index = {index: inclusion_ranges(index, size) for index in wanted}
    flat = [r for ranges in per_index.values() for r in ranges]
    hashes = iter(_hash_ranges(conn, flat, size))
    return {index: [next(hashes) for _ in ranges] for index, ranges in per_index.items()}


def consistency_proof_at(conn: Connection, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 consistency proof between the trees of ``size1`` and ``size2`` leaves.

    Raises:
        ValueError: unless ``0 < size1 <= size2 <= integrated size``.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"a consistency proof needs 0 < size1 <= size2, got {size1}, {size2}")
    return _hash_ranges(conn, consistency_ranges(size1, size2), size2)


# Checkpoints and cosignatures ---------------------------------------------------------------


#: Statements of the read path that every verify request runs, built once: building a
#: statement costs more than running it on an index.
_LATEST_CHECKPOINT = (
    select(checkpoints_table.c.size, checkpoints_table.c.root_hash, checkpoints_table.c.note)
    .order_by(checkpoints_table.c.size.desc())
    .limit(1)
)
_COSIGNATURES = (
    select(cosignatures_table.c.size, cosignatures_table.c.line)
    .where(cosignatures_table.c.size.in_(bindparam("sizes", expanding=True)))
    .order_by(cosignatures_table.c.size, cosignatures_table.c.witness)
)
_LEAVES_AT = select(leaves_table.c.idx, leaves_table.c.data).where(
    leaves_table.c.idx.in_(bindparam("indexes", expanding=True))
)


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    """The most recent signed checkpoint with its cosignatures, or None before the first."""
    row = conn.execute(_LATEST_CHECKPOINT).first()
    if row is None:
        return None
    return _with_cosignatures(conn, [StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]))])[0]


def latest_checkpoint_time(conn: Connection) -> tuple[int, dt.datetime] | None:
    """The size and signing time of the latest checkpoint, or None before the first."""
    row = conn.execute(
        select(checkpoints_table.c.size, checkpoints_table.c.created_at)
        .order_by(checkpoints_table.c.size.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    created: dt.datetime = row[1]
    return int(row[0]), created if created.tzinfo else created.replace(tzinfo=dt.UTC)


def checkpoints(conn: Connection, *, after: int = -1, limit: int = 1000) -> list[StoredCheckpoint]:
    """Stored checkpoints with ``size > after``, oldest first, with their cosignatures."""
    rows = conn.execute(
        select(checkpoints_table.c.size, checkpoints_table.c.root_hash, checkpoints_table.c.note)
        .where(checkpoints_table.c.size > after)
        .order_by(checkpoints_table.c.size)
        .limit(limit)
    )
    return _with_cosignatures(
        conn, [StoredCheckpoint(int(s), bytes(r), str(n)) for s, r, n in rows]
    )


def recent_checkpoints(conn: Connection, *, limit: int) -> list[StoredCheckpoint]:
    """The ``limit`` latest checkpoints, newest first, with their cosignatures."""
    rows = conn.execute(
        select(checkpoints_table.c.size, checkpoints_table.c.root_hash, checkpoints_table.c.note)
        .order_by(checkpoints_table.c.size.desc())
        .limit(limit)
    )
    return _with_cosignatures(
        conn, [StoredCheckpoint(int(s), bytes(r), str(n)) for s, r, n in rows]
    )


def _with_cosignatures(conn: Connection, stored: list[StoredCheckpoint]) -> list[StoredCheckpoint]:
    if not stored:
        return stored
    rows = conn.execute(_COSIGNATURES, {"sizes": [c.size for c in stored]})
    lines: dict[int, str] = {}
    for size, line in rows:
        lines[int(size)] = lines.get(int(size), "") + f"{line}\n"
    return [StoredCheckpoint(c.size, c.root_hash, c.note + lines.get(c.size, "")) for c in stored]


def store_checkpoint(conn: Connection, checkpoint: StoredCheckpoint) -> None:
    """Keep a signed checkpoint (the history is kept: one row per size)."""
    conn.execute(
        insert(checkpoints_table).values(
            size=checkpoint.size,
            root_hash=checkpoint.root_hash,
            note=checkpoint.note,
            created_at=dt.datetime.now(dt.UTC),
        )
    )


def store_cosignature(conn: Connection, size: int, witness: str, line: str) -> None:
    """Keep a witness's cosignature line (one per witness and size; a repeat is ignored)."""
    exists = conn.execute(
        select(cosignatures_table.c.size).where(
            cosignatures_table.c.size == size, cosignatures_table.c.witness == witness
        )
    ).first()
    if exists is None:
        conn.execute(
            insert(cosignatures_table).values(
                size=size, witness=witness, line=line, created_at=dt.datetime.now(dt.UTC)
            )
        )


def entry_bundle(conn: Connection, index: int, width: int) -> bytes | None:
    """The c2sp.org/tlog-tiles entry bundle ``index`` of ``width`` leaves, or None if not stored.

    Each entry is its length as a big-endian uint16 followed by the leaf bytes; a stored
    leaf longer than that allows raises ``EntryTooLarge`` naming it.
    """
    start = index * TILE_WIDTH
    rows = leaf_data(conn, start, start + width)
    if len(rows) != width:
        return None
    return encode_entry_bundle(start, [data for _, data in rows])
