"""The log in a SQL database (SQLite or PostgreSQL), through SQLAlchemy Core.

Leaves get their index inside the writer's own transaction: ``append_leaves`` bumps a single
counter row and inserts the leaves, so an index is dense, gapless and durable the moment the
writer commits, and a rolled-back writer leaves no hole. On PostgreSQL the counter's row lock
orders concurrent writers, so committed leaves always form a prefix ``[0, size)``: that is what
lets the sequencer integrate without ever skipping or repeating a leaf.

Thin for now: roots and proofs read every leaf hash below the tree size (O(n)); a stored tree
of subtree hashes replaces that without changing this interface.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    insert,
    select,
    update,
)

from .hashing import leaf_hash
from .proofs import consistency_proof_from_hashes, inclusion_proof_from_hashes, root_from_hashes

metadata = MetaData()

leaves_table = Table(
    "ledger_leaves",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

head_table = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_index", BigInteger, nullable=False),
)

checkpoints_table = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

_HEAD_ID = 1


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: its size, root and the signed note text."""

    size: int
    root_hash: bytes
    note: str


def initial_rows() -> list[dict[str, int]]:
    """The counter row a new log starts with (written by the schema migration)."""
    return [{"id": _HEAD_ID, "next_index": 0}]


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
    conn.execute(
        insert(leaves_table),
        [{"idx": first + i, "leaf_hash": leaf_hash(d), "data": d} for i, d in enumerate(data)],
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
    rows = conn.execute(
        select(leaves_table.c.idx, leaves_table.c.data).where(leaves_table.c.idx.in_(indexes))
    )
    return {int(i): bytes(d) for i, d in rows}


def _leaf_hashes(conn: Connection, size: int) -> list[bytes]:
    rows = conn.execute(
        select(leaves_table.c.leaf_hash)
        .where(leaves_table.c.idx < size)
        .order_by(leaves_table.c.idx)
    )
    hashes = [bytes(h) for (h,) in rows]
    if len(hashes) != size:
        raise RuntimeError(f"the log holds {len(hashes)} leaves below size {size}")
    return hashes


def root_at(conn: Connection, size: int) -> bytes:
    """The root hash of the first ``size`` leaves."""
    return root_from_hashes(_leaf_hashes(conn, size))


def inclusion_proof_at(conn: Connection, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return inclusion_proof_from_hashes(_leaf_hashes(conn, size), index, size)


def inclusion_proofs_at(
    conn: Connection, indexes: Sequence[int], size: int
) -> dict[int, list[bytes]]:
    """Inclusion proofs of several leaves in one tree, reading the tree once."""
    if not indexes:
        return {}
    hashes = _leaf_hashes(conn, size)
    return {i: inclusion_proof_from_hashes(hashes, i, size) for i in indexes}


def consistency_proof_at(conn: Connection, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 consistency proof between the trees of ``size1`` and ``size2`` leaves."""
    return consistency_proof_from_hashes(_leaf_hashes(conn, size2), size1, size2)


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    """The most recent signed checkpoint, or None before the first integration."""
    row = conn.execute(
        select(checkpoints_table.c.size, checkpoints_table.c.root_hash, checkpoints_table.c.note)
        .order_by(checkpoints_table.c.size.desc())
        .limit(1)
    ).first()
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), str(row[2]))


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
