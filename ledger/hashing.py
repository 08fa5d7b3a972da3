"""Merkle tree hashing of RFC 9162 §2.1 (unchanged from RFC 6962 §2.1).

Leaves and interior nodes are hashed with different one-byte prefixes so that
a leaf can never be passed off as an interior node (second-preimage
protection)::

    leaf hash = SHA-256(0x00 || data)
    node hash = SHA-256(0x01 || left || right)

The hash of the empty tree is SHA-256 of the empty string.
"""

import hashlib

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "LEAF_PREFIX", "NODE_PREFIX", "leaf_hash", "node_hash"]

LEAF_PREFIX = b"\x00"
"""Domain-separation prefix of a leaf hash (RFC 9162 §2.1.1)."""

NODE_PREFIX = b"\x01"
"""Domain-separation prefix of an interior node hash (RFC 9162 §2.1.1)."""

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}), the root hash of the tree with no leaves (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the hash of one leaf, MTH({d0}) = SHA-256(0x00 || d0) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an interior node, SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
