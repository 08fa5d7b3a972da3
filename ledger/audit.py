"""The offline audit: rebuild the whole tree from the leaves and check everything against it.

Whoever holds the leaves and the log's public key can run it, from the database or from the
public HTTP interface. It re-reads every leaf in order, recomputes every leaf hash and every
tile, and checks:

1. every stored checkpoint's signature by the log key;
2. every checkpoint's root against the tree recomputed at its size, and the consistency
   proof between each pair of consecutive checkpoints (RFC 9162 §2.1.4);
3. every stored leaf hash and every stored tile hash against the recomputed ones;
4. whatever the caller checks inside each leaf (medtrace checks the station's signature);
5. with an ``EntrySource``, every c2sp.org/tlog-tiles entry bundle up to the latest
   checkpoint: readable, and each entry's hash the leaf hash of the tree.

It reports every finding with the leaf index it concerns, first index first. The ledger knows
nothing of leaf contents: the check of a leaf's inside is the caller's ``check_leaf``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from ._tree import (
    TILE_HEIGHT,
    TILE_WIDTH,
    StoredTile,
    TileKey,
    consistency_ranges,
    decode_entry_bundle,
    extend_tiles,
    hash_ranges,
    subtree_root,
    tiles_at_edge,
)
from .checkpoint import Checkpoint, open_checkpoint
from .errors import CheckpointError, EntryTooLarge
from .hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash
from .note import NoteVerifier
from .proofs import verify_consistency

__all__ = ["AuditSource", "EntrySource", "Finding", "audit"]


@dataclass(frozen=True, order=True)
class Finding:
    """One thing found wrong: the first leaf index it concerns (-1: none) and what."""

    index: int
    what: str


class AuditSource(Protocol):
    """Where the audit reads the log: a database or a log's HTTP interface."""

    def checkpoint_notes(self) -> Iterable[str]:
        """Every stored checkpoint note, oldest first."""

    def leaves(self, start: int, end: int) -> Iterable[tuple[int, bytes, bytes | None]]:
        """Leaves ``[start, end)`` as (index, data, stored leaf hash or None), in order."""

    def stored_tiles(self, wanted: Mapping[TileKey, int]) -> Mapping[TileKey, StoredTile]:
        """The stored tiles with these keys, each at least the width (in hashes) given.

        Each comes with its stored inner nodes where the source has them; missing tiles are
        left out.
        """


class EntrySource(Protocol):
    """Where the audit reads the log's c2sp.org/tlog-tiles entry bundles."""

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle ``index`` holding ``width`` leaves (``width`` < 256: a partial one).

        Raises ``EntryTooLarge`` when a leaf in it is too long for an entry, and
        ``LookupError`` with the reason when it cannot be read otherwise.
        """


_NO_INDEX = -1
_BATCH = 4096


def audit(
    source: AuditSource,
    log_key: NoteVerifier,
    *,
    check_leaf: Callable[[int, bytes], str | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    entries: EntrySource | None = None,
) -> list[Finding]:
    """Audit a whole log; return the findings sorted by index (empty: all is well).

    ``check_leaf(index, data)`` returns what is wrong inside a leaf, or None. ``progress`` is
    called with (leaves done, leaves in total) as the audit goes. With ``entries``, the entry
    bundles are checked against the tree too (``_compare_entry_bundles``).
    """
    findings: list[Finding] = []
    trusted: list[Checkpoint] = []
    for note in source.checkpoint_notes():
        try:
            checkpoint = open_checkpoint(note, log_key)
        except CheckpointError as exc:
            claimed = note.split("\n", 2)[1] if note.count("\n") >= 2 else "?"
            findings.append(Finding(_NO_INDEX, f"checkpoint of size {claimed}: {exc}"))
            continue
        if trusted and checkpoint.size <= trusted[-1].size:
            findings.append(
                Finding(_NO_INDEX, f"checkpoint of size {checkpoint.size} is out of order")
            )
            continue
        trusted.append(checkpoint)
    total = trusted[-1].size if trusted else 0
    tiles: dict[TileKey, bytes] = {}
    inner: dict[TileKey, bytes] = {}
    size = 0
    previous: Checkpoint | None = None
    try:
        for checkpoint in trusted:
            for start in range(size, checkpoint.size, _BATCH):
                end = min(start + _BATCH, checkpoint.size)
                blob = _read_batch(source, start, end, check_leaf, findings)
                edge = {k: tiles[k] for k in tiles_at_edge(start) if k in tiles}
                tiles.update(extend_tiles(start, edge, blob, inner))
                if progress is not None:
                    progress(end, total)
            size = checkpoint.size
            _check_checkpoint(tiles, previous, checkpoint, findings)
            previous = checkpoint
    except _Unreadable:
        return sorted(findings)
    findings.extend(_compare_tiles(source, tiles, inner))
    if entries is not None:
        findings.extend(_compare_entry_bundles(entries, tiles, size))
    return sorted(findings)


def _compare_entry_bundles(
    entries: EntrySource, tiles: Mapping[TileKey, bytes], size: int
) -> Iterator[Finding]:
    """Check each entry bundle of the first ``size`` leaves against the recomputed level-0
    tiles (the leaf hashes of the tree the checkpoints sign): a tlog-tiles client reads the
    leaves from these bundles, so a bundle that cannot be read, or holds other bytes than
    the leaves, is a finding at the first leaf it concerns."""
    for bundle in range(-(-size // TILE_WIDTH)):
        first = bundle * TILE_WIDTH
        width = min(TILE_WIDTH, size - first)
        try:
            found = decode_entry_bundle(entries.entry_bundle(bundle, width))
        except EntryTooLarge as exc:
            yield Finding(exc.index, f"{exc}: entry bundle {bundle} cannot hold it")
            continue
        except (LookupError, ValueError) as exc:
            yield Finding(first, f"entry bundle {bundle} (leaves from {first}): {exc}")
            continue
        if len(found) != width:
            yield Finding(
                first,
                f"entry bundle {bundle} holds {len(found)} entries, not {width}",
            )
            continue
        hashes = tiles[(0, bundle)]
        for offset, entry in enumerate(found):
            at = offset * HASH_SIZE
            if leaf_hash(entry) != hashes[at : at + HASH_SIZE]:
                yield Finding(
                    first + offset,
                    f"leaf {first + offset}: its entry in bundle {bundle} is not the leaf",
                )
                break


def _read_batch(
    source: AuditSource,
    start: int,
    end: int,
    check_leaf: Callable[[int, bytes], str | None] | None,
    findings: list[Finding],
) -> bytes:
    hashes: list[bytes] = []
    expected = start
    for index, data, stored in source.leaves(start, end):
        if index != expected:
            findings.append(Finding(expected, f"leaf {expected} is missing"))
            raise _Unreadable
        computed = leaf_hash(data)
        if stored is not None and stored != computed:
            findings.append(
                Finding(index, f"leaf {index}: its stored hash is not the hash of its data")
            )
        if check_leaf is not None:
            problem = check_leaf(index, data)
            if problem is not None:
                findings.append(Finding(index, f"leaf {index}: {problem}"))
        hashes.append(computed)
        expected += 1
    if expected != end:
        findings.append(Finding(expected, f"leaf {expected} is missing"))
        raise _Unreadable
    return b"".join(hashes)


class _Unreadable(Exception):
    """The leaves stop before a checkpoint's size: the audit cannot go on."""


def _check_checkpoint(
    tiles: Mapping[TileKey, bytes],
    previous: Checkpoint | None,
    checkpoint: Checkpoint,
    findings: list[Finding],
) -> None:
    size = checkpoint.size

    def read(keys: Iterable[TileKey]) -> dict[TileKey, StoredTile]:
        return {k: (tiles[k], None) for k in keys if k in tiles}

    root = hash_ranges([(0, size)], read)[0] if size else EMPTY_ROOT
    if root != checkpoint.root_hash:
        since = previous.size if previous is not None else 0
        findings.append(
            Finding(
                _NO_INDEX,
                f"checkpoint of size {size}: its root is not the root of the leaves "
                f"(a leaf in [{since}, {size}) or its hash differs from what was signed)",
            )
        )
        return
    if previous is None or previous.size == 0:
        return
    proof = hash_ranges(consistency_ranges(previous.size, size), read)
    if not verify_consistency(previous.size, size, previous.root_hash, root, proof):
        findings.append(
            Finding(
                previous.size,
                f"checkpoints of sizes {previous.size} and {size} are not consistent",
            )
        )


def _compare_tiles(
    source: AuditSource, tiles: Mapping[TileKey, bytes], inner: Mapping[TileKey, bytes]
) -> Iterator[Finding]:
    """Check the stored tiles: level 0 against the leaves, each level above against its own
    children where those are right, so a finding points at the stored hash that is wrong."""
    keys = sorted(tiles)
    stored: dict[TileKey, bytes] = {}
    stored_inner: dict[TileKey, bytes] = {}
    for offset in range(0, len(keys), 256):
        batch = keys[offset : offset + 256]
        found = source.stored_tiles({k: len(tiles[k]) // HASH_SIZE for k in batch})
        for key, (row, nodes) in found.items():
            stored[key] = row
            if nodes is not None:
                stored_inner[key] = nodes
    for key in keys:
        level, index = key
        computed = tiles[key]
        blob = stored.get(key)
        if blob == computed and key in inner and key in stored_inner:
            # The inner nodes are checked once the hashes they are made of are right.
            yield from _compare_inner(key, inner[key], stored_inner[key])
        if blob is None or len(blob) < len(computed):
            yield Finding(
                (index * TILE_WIDTH) << (TILE_HEIGHT * level),
                f"tile {level}/{index} is missing or shorter than the tree",
            )
            continue
        for position in range(0, len(computed), HASH_SIZE):
            node = index * TILE_WIDTH + position // HASH_SIZE
            hash_ = blob[position : position + HASH_SIZE]
            if level == 0:
                if hash_ != computed[position : position + HASH_SIZE]:
                    yield Finding(node, f"leaf {node}: its stored hash in tile 0/{index} is wrong")
                    break
                continue
            # A wrong child tile is reported at its own level, with a more precise index.
            child = stored.get((level - 1, node), b"")[: TILE_WIDTH * HASH_SIZE]
            if child == tiles.get((level - 1, node)) and subtree_root(child) != hash_:
                leaf = node << (TILE_HEIGHT * level)
                yield Finding(
                    leaf,
                    f"tile {level}/{index}: the stored hash of the {TILE_WIDTH**level} leaves "
                    f"from leaf {leaf} is not the root of tile {level - 1}/{node}",
                )
                break


def _compare_inner(key: TileKey, computed: bytes, stored: bytes) -> Iterator[Finding]:
    """A full tile's stored inner nodes against the recomputed ones (the first wrong one)."""
    level, index = key
    if stored == computed:
        return
    for height in range(1, TILE_HEIGHT):
        start = TILE_WIDTH - (TILE_WIDTH >> (height - 1))
        for position in range(TILE_WIDTH >> height):
            at = (start + position) * HASH_SIZE
            if stored[at : at + HASH_SIZE] != computed[at : at + HASH_SIZE]:
                node = ((index * TILE_WIDTH) >> height) + position
                leaf = node << (TILE_HEIGHT * level + height)
                yield Finding(
                    leaf,
                    f"tile {level}/{index}: the stored inner hash of the "
                    f"{1 << (TILE_HEIGHT * level + height)} leaves from leaf {leaf} is wrong",
                )
                return
