"""Merkle tree hashes, inclusion proofs and consistency proofs of RFC 9162 §2.1.

The functions are pure: they take leaves or leaf hashes, sizes and hashes, and
return hashes. They touch no storage, clock or settings.

Construction comes in two forms. ``root_hash``, ``inclusion_proof`` and
``consistency_proof`` take the raw leaf data D[n]; the ``*_from_hashes``
variants take the leaf hashes (what the store keeps) and do the work. Both
forms use only the first ``size`` leaves a proof is asked for, so a proof for
an older tree size can be built from a longer log.

Verification follows the iterative algorithms of RFC 9162 §2.1.3.2 and
§2.1.4.2 step by step, without rebuilding a tree. It has two faces:

* ``check_inclusion`` / ``check_consistency`` (and ``root_from_inclusion_proof``)
  return nothing (or the root) and raise ``ProofError`` for malformed input
  and ``RootMismatch`` when the proof leads elsewhere;
* ``verify_inclusion`` / ``verify_consistency`` wrap them and return a
  boolean. They never raise, whatever they are given, so that HTTP handlers and
  the verify page can report ``False`` for any bad proof.
"""

from collections.abc import Sequence

from ._tree import consistency_ranges, inclusion_ranges
from .errors import LedgerError, ProofError, RootMismatch
from .hashing import EMPTY_ROOT, HASH_SIZE, node_hash
from .hashing import leaf_hash as _hash_leaf

__all__ = [
    "check_consistency",
    "check_inclusion",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "root_from_hashes",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

_MAX_TREE_SIZE = 2**64
"""Tree sizes and leaf indexes are uint64 in RFC 9162 and c2sp.org/tlog-checkpoint."""


# Construction over raw leaf data ------------------------------------------------------------


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]), the Merkle Tree Hash of all ``leaves`` (RFC 9162 §2.1.1).

    The empty list gives ``EMPTY_ROOT``. Runs in O(n) hashing with no recursion,
    so a million leaves are fine.
    """
    return root_from_hashes(_hash_leaves(leaves))


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Return PATH(index, D[size]), the inclusion proof of RFC 9162 §2.1.3.1.

    The tree is made of the first ``size`` of ``leaves``. The proof lists the
    sibling hashes from the leaf up to the root.

    Raises:
        ValueError: unless ``0 <= index < size <= len(leaves)``.
    """
    return inclusion_proof_from_hashes(_hash_leaves(leaves), index, size)


def consistency_proof(leaves: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """Return PROOF(size1, D[size2]), the consistency proof of RFC 9162 §2.1.4.1.

    It proves that the tree of the first ``size1`` leaves is a prefix of the
    tree of the first ``size2`` leaves. ``size1 == size2`` gives ``[]``. A proof
    from the empty tree is not defined: verifiers (``verify_consistency`` here,
    and current transparency-log verifiers) reject ``size1 == 0``, so the first
    checkpoint of a log has to be trusted on its own.

    Raises:
        ValueError: unless ``0 < size1 <= size2 <= len(leaves)``.
    """
    return consistency_proof_from_hashes(_hash_leaves(leaves), size1, size2)


def _hash_leaves(leaves: Sequence[bytes]) -> list[bytes]:
    return [_hash_leaf(data) for data in leaves]


# Construction over leaf hashes ------------------------------------------------------------


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of the tree whose leaf hashes are ``hashes`` (RFC 9162 §2.1.1).

    ``hashes`` are leaf hashes as made by ``leaf_hash``, not raw leaf data. The
    empty list gives ``EMPTY_ROOT``.
    """
    if not hashes:
        return EMPTY_ROOT
    return _subtree_root(hashes, 0, len(hashes))


def inclusion_proof_from_hashes(hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Return PATH(index, D[size]) (RFC 9162 §2.1.3.1) from leaf hashes.

    Raises:
        ValueError: unless ``0 <= index < size <= len(hashes)``.
    """
    if not 0 <= index < size <= len(hashes):
        raise ValueError(
            "an inclusion proof needs 0 <= index < size <= number of leaves, "
            f"got index={index}, size={size} with {len(hashes)} leaves"
        )
    return [_subtree_root(hashes, start, end) for start, end in inclusion_ranges(index, size)]


def consistency_proof_from_hashes(hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """Return PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1) from leaf hashes.

    A proof from the empty tree is not defined (see ``consistency_proof``).

    Raises:
        ValueError: unless ``0 < size1 <= size2 <= len(hashes)``.
    """
    if not 0 < size1 <= size2 <= len(hashes):
        raise ValueError(
            "a consistency proof needs 0 < size1 <= size2 <= number of leaves, "
            f"got size1={size1}, size2={size2} with {len(hashes)} leaves"
        )
    return [_subtree_root(hashes, start, end) for start, end in consistency_ranges(size1, size2)]


def _subtree_root(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """Return MTH of the leaf hashes ``hashes[start:end]`` (start < end) without copying them.

    Keeps a stack of the roots of complete subtrees, as in a binary counter:
    after c leaves it holds one root per set bit of c, largest first. Adding
    the c-th leaf merges as many roots as c has trailing zero bits. The RFC tree
    then is the right fold of the stack, because MTH(D[n]) joins the complete
    left subtree D[0:k] with the tree of the rest.
    """
    stack: list[bytes] = []
    for count, i in enumerate(range(start, end), start=1):
        node = hashes[i]
        carry = count
        while not carry & 1:
            node = node_hash(stack.pop(), node)
            carry >>= 1
        stack.append(node)
    root = stack.pop()
    while stack:
        root = node_hash(stack.pop(), root)
    return root


# Verification ------------------------------------------------------------------------------


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1 to 4).

    Preconditions: ``0 <= index < size < 2**64``; ``leaf_hash`` and every
    element of ``proof`` are 32-byte hashes; ``proof`` has exactly the number of
    hashes that PATH(index, D[size]) has. The caller compares the result with a
    root it trusts (``check_inclusion`` does).

    Raises:
        ProofError: if a precondition does not hold.
    """
    leaf = _hash_arg(leaf_hash, "leaf hash")
    index = _uint64_arg(index, "leaf index")
    size = _uint64_arg(size, "tree size")
    path = _proof_arg(proof)
    # 1. The leaf must lie inside the tree.
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    # 2. fn is the leaf's node number, sn the last node's, on the current level.
    fn, sn = index, size - 1
    # 3.
    r = leaf
    # 4. Fold in the proof from the leaf up.
    for p in path:
        # a. Nothing is left above: the proof is too long.
        if sn == 0:
            raise ProofError(
                f"inclusion proof has {len(path)} hashes, too many for leaf {index} "
                f"in a tree of size {size}"
            )
        # b. A right child, or the last node of its level, takes p on its left.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # ii. Climb past the levels where the node has no right sibling.
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        # c.
        fn >>= 1
        sn >>= 1
    # 5. (first half) The proof must reach the root.
    if sn != 0:
        raise ProofError(
            f"inclusion proof has {len(path)} hashes, too few for leaf {index} "
            f"in a tree of size {size}"
        )
    return r


def check_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    Implements RFC 9162 §2.1.3.2 with the preconditions of
    ``root_from_inclusion_proof``. ``root`` must be the root of a tree of
    exactly ``size`` leaves, taken from a verified checkpoint: the proof binds
    the leaf to the root, and the checkpoint binds the root to the size.

    Raises:
        ProofError: if the input is malformed.
        RootMismatch: if the proof leads to another root than ``root``.
    """
    expected = _hash_arg(root, "root")
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if calculated != expected:
        raise RootMismatch(expected, calculated)


def check_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``size1``, ``root1``) is a prefix of the tree (``size2``, ``root2``).

    Implements RFC 9162 §2.1.4.2 for ``0 < size1 < size2``. For
    ``size1 == size2`` the proof must be empty and the roots equal. A proof
    from the empty tree (``size1 == 0``) is not defined and is refused, as
    current transparency-log verifiers do.

    Raises:
        ProofError: if the input is malformed: sizes outside
            ``0 < size1 <= size2 < 2**64``, a hash that is not 32 bytes, or a
            proof of the wrong length.
        RootMismatch: if the proof leads to another first or second root.
    """
    size1 = _uint64_arg(size1, "first tree size")
    size2 = _uint64_arg(size2, "second tree size")
    first = _hash_arg(root1, "first root")
    second = _hash_arg(root2, "second root")
    path = _proof_arg(proof)
    if size1 == 0:
        raise ProofError(
            "a consistency proof from the empty tree is not defined (RFC 9162 §2.1.4); "
            "trust the first checkpoint on its own"
        )
    if size1 > size2:
        raise ProofError(f"first tree size {size1} is larger than second tree size {size2}")
    if size1 == size2:
        if path:
            raise ProofError("a consistency proof between equal tree sizes must be empty")
        if first != second:
            raise RootMismatch(second, first)
        return
    # 1.
    if not path:
        raise ProofError(f"consistency proof from size {size1} to size {size2} is empty")
    # 2. A complete old tree is itself a node of the new one: its root starts the path.
    if size1 & (size1 - 1) == 0:
        path.insert(0, first)
    # 3. fn is the old tree's last node number, sn the new tree's, on the current level.
    fn, sn = size1 - 1, size2 - 1
    # 4. Skip the levels where the old tree's last node is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr rebuilds the old root, sr the new one.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        # a. Nothing is left above: the proof is too long.
        if sn == 0:
            raise ProofError(
                f"consistency proof from size {size1} to size {size2} has too many hashes"
            )
        # b. A left sibling belongs to both trees; a right one only to the new tree.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. Climb past the levels where the node has no right sibling.
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        # c.
        fn >>= 1
        sn >>= 1
    # 7. The proof must reach the root, and both roots must match.
    if sn != 0:
        raise ProofError(f"consistency proof from size {size1} to size {size2} has too few hashes")
    if fr != first:
        raise RootMismatch(first, fr)
    if sr != second:
        raise RootMismatch(second, sr)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return whether ``proof`` shows ``leaf_hash`` at ``index`` in the tree (``size``, ``root``).

    RFC 9162 §2.1.3.2, as ``check_inclusion``, with a boolean result: any
    malformed input or mismatch gives ``False``. Never raises.
    """
    try:
        check_inclusion(leaf_hash, index, size, proof, root)
    except LedgerError:
        return False
    return True


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether ``proof`` shows (``size1``, ``root1``) is a prefix of (``size2``, ``root2``).

    RFC 9162 §2.1.4.2, as ``check_consistency``, with a boolean result: any
    malformed input or mismatch gives ``False``, and so does ``size1 == 0``.
    Never raises.
    """
    try:
        check_consistency(size1, size2, root1, root2, proof)
    except LedgerError:
        return False
    return True


# Input checks shared by the verifiers: they turn anything unexpected into ProofError,
# which is what lets verify_* promise never to raise.


def _hash_arg(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(value)


def _uint64_arg(value: object, what: str) -> int:
    # Checked before any message shows the value: str() refuses ints of more than 4300 digits.
    if not isinstance(value, int) or not 0 <= value < _MAX_TREE_SIZE:
        raise ProofError(f"{what} must be an integer in [0, 2**64)")
    return value


def _proof_arg(proof: object) -> list[bytes]:
    if isinstance(proof, str | bytes | bytearray) or not isinstance(proof, Sequence):
        raise ProofError("proof must be a sequence of hashes")
    return [_hash_arg(p, f"proof hash {i}") for i, p in enumerate(proof)]
