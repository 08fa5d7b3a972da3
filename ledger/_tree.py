"""The shape of an RFC 9162 tree, and its storage as C2SP tlog-tiles.

Pure helpers shared by the proof functions over leaf hashes (``proofs.py``) and by the stored
tree (``sql.py``, the audit):

* ``inclusion_ranges`` and ``consistency_ranges`` say which subtrees D[start:end] an RFC 9162
  §2.1.3.1 / §2.1.4.1 proof is made of, without hashing anything. Every such range starts at a
  multiple of a power of two at least as large as itself, so it splits into complete aligned
  subtrees (``range_nodes``): one per set bit of its size, largest first.
* A node is ``(level, k)``: the complete subtree of the leaves ``[k * 2**level,
  (k + 1) * 2**level)``.
* Tiles (c2sp.org/tlog-tiles): the tile at level L and index N holds the hashes of the nodes
  ``(8 L, 256 N) ... (8 L, 256 N + 255)`` concatenated, 32 bytes each; a partial tile holds
  the first W < 256 of them. Every other node lies inside one tile: it is a slice of that
  full tile's stored inner nodes (``tile_inner``), or is rebuilt from at most 128 of the
  tile's hashes, so any root or proof costs O(log n) tile reads. ``extend_tiles`` integrates
  new leaf hashes by touching only the right edge of the tree: one partial tile per level,
  plus the new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from .errors import EntryTooLarge
from .hashing import HASH_SIZE, NODE_PREFIX

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Node",
    "StoredTile",
    "TileKey",
    "consistency_ranges",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "extend_tiles",
    "fold_range",
    "hash_ranges",
    "inclusion_ranges",
    "node_from_tile",
    "range_nodes",
    "split",
    "subtree_root",
    "tile_for_node",
    "tile_inner",
    "tiles_at_edge",
]

TILE_HEIGHT = 8
"""Levels of the tree per tile (c2sp.org/tlog-tiles uses 8)."""

TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile."""

_FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE

MAX_ENTRY_SIZE = 0xFFFF
"""The longest leaf an entry bundle can hold: c2sp.org/tlog-tiles writes each entry as a
big-endian uint16 length and the entry's bytes."""
_LENGTH_BYTES = 2


def encode_entry_bundle(first: int, leaves: Sequence[bytes]) -> bytes:
    """The c2sp.org/tlog-tiles entry bundle of ``leaves``, the first of which is leaf
    ``first``; ``EntryTooLarge`` naming the first leaf longer than ``MAX_ENTRY_SIZE``."""
    out = bytearray()
    for offset, data in enumerate(leaves):
        if len(data) > MAX_ENTRY_SIZE:
            raise EntryTooLarge(first + offset, len(data))
        out += len(data).to_bytes(_LENGTH_BYTES, "big") + data
    return bytes(out)


def decode_entry_bundle(bundle: bytes) -> list[bytes]:
    """The entries of a c2sp.org/tlog-tiles entry bundle; ``ValueError`` if it is truncated."""
    entries: list[bytes] = []
    at = 0
    while at < len(bundle):
        if at + _LENGTH_BYTES > len(bundle):
            raise ValueError(f"the bundle ends inside the length of entry {len(entries)}")
        length = int.from_bytes(bundle[at : at + _LENGTH_BYTES], "big")
        at += _LENGTH_BYTES
        if at + length > len(bundle):
            raise ValueError(f"the bundle ends inside entry {len(entries)}")
        entries.append(bundle[at : at + length])
        at += length
    return entries


Node = tuple[int, int]
"""``(level, k)``: the complete subtree over leaves ``[k << level, (k + 1) << level)``."""

TileKey = tuple[int, int]
"""``(tile level, tile index)``."""

_sha256 = hashlib.sha256


def split(n: int) -> int:
    """Return k, the largest power of two smaller than ``n`` (n > 1), as RFC 9162 §2.1.1 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees of PATH(index, D[size]) (RFC 9162 §2.1.3.1), from the leaf up.

    Precondition: ``0 <= index < size``.
    """
    # PATH(m, D[n]) with k = split(n) is PATH(m, D[0:k]) : MTH(D[k:n]) if m < k,
    # PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise. Walk it from the root down, then reverse.
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The subtrees of PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1), in proof order.

    Precondition: ``0 < size1 <= size2``.
    """
    # PROOF(m, D[n]) = SUBPROOF(m, D[n], true), where, for m < n and k = split(n),
    #   SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          if m <= k
    #   SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])  otherwise
    # and SUBPROOF(m, D[m], true) = {}, SUBPROOF(m, D[m], false) = {MTH(D[m])}.
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, size2, size1
    whole_old_tree = True  # the flag b: D[start:start+m] is still the whole old tree
    while m < end - start:
        k = split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees whose fold from the right is MTH(D[start:end]), largest first.

    MTH(D[n]) joins the complete subtree D[0:k] (k the largest power of two below n) with the
    tree of the rest, so the parts are one per set bit of ``end - start``.

    Raises:
        ValueError: if ``start`` is not aligned to the largest part (proof ranges always are).
    """
    nodes: list[Node] = []
    size = end - start
    while size:
        level = size.bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError(f"range [{start}, {end}) is not aligned to a subtree")
        nodes.append((level, start >> level))
        start += 1 << level
        size -= 1 << level
    return nodes


def fold_range(node_hashes: Sequence[bytes]) -> bytes:
    """Fold the roots of ``range_nodes`` (largest first) into the root of their range."""
    root = node_hashes[-1]
    for left in reversed(node_hashes[:-1]):
        root = _sha256(NODE_PREFIX + left + root).digest()
    return root


def subtree_root(blob: bytes) -> bytes:
    """The root of a complete subtree given its 2**r leaf-level hashes concatenated."""
    return _levels(blob)[-1]


def _levels(blob: bytes) -> list[bytes]:
    """Every level of a complete subtree, from the given hashes up to its root."""
    levels = [blob]
    while len(blob) > HASH_SIZE:
        blob = b"".join(
            [_sha256(NODE_PREFIX + blob[i : i + 64]).digest() for i in range(0, len(blob), 64)]
        )
        levels.append(blob)
    return levels


def tile_inner(tile: bytes) -> bytes:
    """The inner nodes of a full tile: its heights 1 to 7 concatenated (254 hashes).

    Stored beside each full tile, they turn every node lookup into a slice: a root or proof
    then hashes only the few nodes it folds, instead of up to 255 per tile it touches.
    """
    return b"".join(_levels(tile)[1:TILE_HEIGHT])


def _inner_offset(height: int) -> int:
    """Where height 1..7 starts in ``tile_inner``'s bytes, in hashes: 0, 128, 192, ..."""
    return TILE_WIDTH - (TILE_WIDTH >> (height - 1))


def tile_for_node(node: Node) -> tuple[TileKey, int, int]:
    """The tile holding the hashes a node is rebuilt from: its key, first offset and count."""
    level, k = node
    tile_level, height = divmod(level, TILE_HEIGHT)
    first = k << height  # index at tree level 8 * tile_level
    return (tile_level, first >> TILE_HEIGHT), first & (TILE_WIDTH - 1), 1 << height


def node_from_tile(node: Node, tile: bytes, inner: bytes | None = None) -> bytes:
    """The hash of ``node`` from its tile's bytes (see ``tile_for_node``), or its inner nodes.

    Raises:
        LookupError: if the tile is too short to hold the node (the tree is not that large).
    """
    _, offset, count = tile_for_node(node)
    height = node[0] % TILE_HEIGHT
    if height and inner is not None:
        at = (_inner_offset(height) + (offset >> height)) * HASH_SIZE
        return inner[at : at + HASH_SIZE]
    part = tile[offset * HASH_SIZE : (offset + count) * HASH_SIZE]
    if len(part) != count * HASH_SIZE:
        raise LookupError(f"node {node} is not in the stored tree")
    return subtree_root(part)


def extend_tiles(
    size: int,
    right_edge: Mapping[TileKey, bytes],
    leaf_hashes: bytes,
    inner: dict[TileKey, bytes] | None = None,
) -> dict[TileKey, bytes]:
    """Integrate new leaf hashes into the tiles of a tree of ``size`` leaves.

    ``right_edge`` must hold, for every level, the tile that the next hash of that level goes
    into when it is partial (``tiles_at_edge``); ``leaf_hashes`` is the new leaf hashes
    concatenated. Returns every tile that changed or is new, with its whole content, and puts
    the inner nodes of every tile that became full into ``inner`` when given (``tile_inner``,
    from the same hashing). Only the new hashes are hashed: about one node hash per new leaf.

    Raises:
        ValueError: if ``leaf_hashes`` is not a whole number of hashes, or a partial tile of
            the right edge is missing or has the wrong width.
    """
    if len(leaf_hashes) % HASH_SIZE:
        raise ValueError("leaf hashes must be a concatenation of 32-byte hashes")
    changed: dict[TileKey, bytes] = {}
    level, count, adding = 0, size, leaf_hashes
    while adding:
        index, width = divmod(count, TILE_WIDTH)
        current = right_edge.get((level, index), b"") if width else b""
        if len(current) != width * HASH_SIZE:
            raise ValueError(f"tile {level}/{index} should hold {width} hashes at size {size}")
        blob = current + adding
        parents: list[bytes] = []
        for offset in range(0, len(blob), _FULL_TILE_BYTES):
            tile = blob[offset : offset + _FULL_TILE_BYTES]
            changed[(level, index)] = tile
            if len(tile) == _FULL_TILE_BYTES:
                levels = _levels(tile)
                parents.append(levels[-1])
                if inner is not None:
                    inner[(level, index)] = b"".join(levels[1:TILE_HEIGHT])
            index += 1
        level, count, adding = level + 1, count >> TILE_HEIGHT, b"".join(parents)
    return changed


def tiles_at_edge(size: int) -> list[TileKey]:
    """The partial tiles of a tree of ``size`` leaves (the ones ``extend_tiles`` extends)."""
    keys: list[TileKey] = []
    level, count = 0, size
    while count:
        index, width = divmod(count, TILE_WIDTH)
        if width:
            keys.append((level, index))
        level, count = level + 1, index
    return keys


StoredTile = tuple[bytes, bytes | None]
"""A tile's hashes and, for a full tile that has them, its inner nodes (``tile_inner``)."""


def hash_ranges(
    ranges: Sequence[tuple[int, int]],
    read_tiles: Callable[[set[TileKey]], Mapping[TileKey, StoredTile]],
) -> list[bytes]:
    """MTH of each range, reading the tiles they need in one call of ``read_tiles``.

    Raises:
        LookupError: if a tile is missing or too short.
    """
    parts = [range_nodes(start, end) for start, end in ranges]
    needed = {tile_for_node(node)[0] for nodes in parts for node in nodes}
    tiles = read_tiles(needed)
    cache: dict[Node, bytes] = {}

    def node_hash_of(node: Node) -> bytes:
        if node not in cache:
            key = tile_for_node(node)[0]
            if key not in tiles:
                raise LookupError(f"tile {key[0]}/{key[1]} is not stored")
            cache[node] = node_from_tile(node, *tiles[key])
        return cache[node]

    return [fold_range([node_hash_of(node) for node in nodes]) for nodes in parts]
