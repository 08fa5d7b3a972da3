"""Tests of ledger/proofs.py.

Three layers of evidence:

* the published RFC 6962 / RFC 9162 vectors (tests/ledger/vectors/rfc6962.json);
* a slow reference written straight from the RFC 9162 §2.1 definitions (MTH,
  PATH, PROOF/SUBPROOF), cross-checked against the fast code with hypothesis;
* corruption properties: every one-hash alteration of a valid proof makes
  verification fail, and verification never raises on garbage.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medtrace.ledger import (
    EMPTY_ROOT,
    ProofError,
    RootMismatch,
    check_consistency,
    check_inclusion,
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    leaf_hash,
    root_from_hashes,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc6962.json").read_text(encoding="utf-8")
)
VECTOR_LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves"]]
MAX_SIZE = 300


# The reference: RFC 9162 §2.1 read literally, recursion over slices and all. ---------------


def _ref_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = _ref_k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1."""
    return ref_subproof(m, d, True)


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _ref_k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


# Strategies and helpers ----------------------------------------------------------------------


def _leaves(salt: bytes, count: int) -> list[bytes]:
    """Distinct leaves, so that no two subtrees share a hash."""
    return [salt + i.to_bytes(2, "big") for i in range(count)]


@st.composite
def _inclusion_cases(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    """Leaves (possibly more than the tree), a tree size and a leaf index in it."""
    leaves = _leaves(draw(st.binary(max_size=8)), draw(st.integers(1, MAX_SIZE)))
    size = draw(st.integers(1, len(leaves)))
    return leaves, draw(st.integers(0, size - 1)), size


@st.composite
def _consistency_cases(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    """Leaves (possibly more than the tree) and sizes 0 < size1 <= size2 <= len(leaves)."""
    leaves = _leaves(draw(st.binary(max_size=8)), draw(st.integers(1, MAX_SIZE)))
    size2 = draw(st.integers(1, len(leaves)))
    return leaves, draw(st.integers(1, size2)), size2


def _flip(value: bytes, bit: int) -> bytes:
    """Flip one bit of ``value`` (bit taken modulo its length)."""
    bit %= len(value) * 8
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


# RFC vectors ---------------------------------------------------------------------------------


def test_empty_tree_root() -> None:
    assert root_hash([]) == EMPTY_ROOT == bytes.fromhex(VECTORS["empty_root_hex"])
    assert root_from_hashes([]) == EMPTY_ROOT


@pytest.mark.parametrize("vector", VECTORS["roots"], ids=lambda v: f"size{v['size']}")
def test_root_vectors(vector: dict[str, Any]) -> None:
    leaves = VECTOR_LEAVES[: vector["size"]]
    assert root_hash(leaves).hex() == vector["root_hex"]
    assert root_from_hashes([leaf_hash(leaf) for leaf in leaves]).hex() == vector["root_hex"]


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion"], ids=lambda v: f"leaf{v['leaf_index']}-size{v['tree_size']}"
)
def test_inclusion_vectors(vector: dict[str, Any]) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    expected = [bytes.fromhex(h) for h in vector["path_hex_list"]]
    root = root_hash(VECTOR_LEAVES[:size])
    leaf = leaf_hash(VECTOR_LEAVES[index])

    assert inclusion_proof(VECTOR_LEAVES, index, size) == expected
    assert root_from_inclusion_proof(leaf, index, size, expected) == root
    check_inclusion(leaf, index, size, expected, root)
    assert verify_inclusion(leaf, index, size, expected, root)


@pytest.mark.parametrize(
    "vector", VECTORS["consistency"], ids=lambda v: f"size{v['size1']}-size{v['size2']}"
)
def test_consistency_vectors(vector: dict[str, Any]) -> None:
    size1, size2 = vector["size1"], vector["size2"]
    expected = [bytes.fromhex(h) for h in vector["proof_hex_list"]]
    root1, root2 = root_hash(VECTOR_LEAVES[:size1]), root_hash(VECTOR_LEAVES[:size2])

    assert consistency_proof(VECTOR_LEAVES, size1, size2) == expected
    check_consistency(size1, size2, root1, root2, expected)
    assert verify_consistency(size1, size2, root1, root2, expected)


def test_node_hash_levels_match_the_vectors() -> None:
    """The interior nodes of the 8-leaf tree are the subtree roots of its complete subtrees."""
    for level, nodes in enumerate(VECTORS["node_hashes_by_level"]):
        width = 1 << level
        for i, node in enumerate(nodes):
            assert root_hash(VECTOR_LEAVES[i * width : (i + 1) * width]).hex() == node


# The fast code against the reference -------------------------------------------------------


@given(salt=st.binary(max_size=8), size=st.integers(0, MAX_SIZE))
def test_root_hash_matches_reference(salt: bytes, size: int) -> None:
    leaves = _leaves(salt, size)
    assert root_hash(leaves) == ref_mth(leaves)


@settings(deadline=None)
@given(case=_inclusion_cases())
def test_inclusion_proof_matches_reference_and_verifies(case: tuple[list[bytes], int, int]) -> None:
    leaves, index, size = case
    proof = inclusion_proof(leaves, index, size)
    root = ref_mth(leaves[:size])

    assert _hex(proof) == _hex(ref_path(index, leaves[:size]))
    assert proof == inclusion_proof_from_hashes([leaf_hash(x) for x in leaves], index, size)
    assert root_from_inclusion_proof(leaf_hash(leaves[index]), index, size, proof) == root
    assert verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)


@settings(deadline=None)
@given(case=_consistency_cases())
def test_consistency_proof_matches_reference_and_verifies(
    case: tuple[list[bytes], int, int],
) -> None:
    leaves, size1, size2 = case
    proof = consistency_proof(leaves, size1, size2)
    root1, root2 = ref_mth(leaves[:size1]), ref_mth(leaves[:size2])

    assert _hex(proof) == _hex(ref_proof(size1, leaves[:size2]))
    assert proof == consistency_proof_from_hashes([leaf_hash(x) for x in leaves], size1, size2)
    assert verify_consistency(size1, size2, root1, root2, proof)


def test_a_million_leaves_need_no_recursion() -> None:
    """2**20 + 3 leaf hashes: the root, a proof for the last leaf and its check are iterative."""
    hashes = [i.to_bytes(32, "big") for i in range(2**20 + 3)]
    root = root_from_hashes(hashes)
    index = len(hashes) - 1
    proof = inclusion_proof_from_hashes(hashes, index, len(hashes))
    assert len(proof) == 2  # the pair of leaves 2**20 and 2**20 + 1, then the first 2**20 leaves
    assert verify_inclusion(hashes[index], index, len(hashes), proof, root)


# Every one-hash alteration fails ------------------------------------------------------------


@settings(deadline=None)
@given(case=_inclusion_cases(), bit=st.integers(0, 255), data=st.data())
def test_every_inclusion_alteration_fails(
    case: tuple[list[bytes], int, int], bit: int, data: st.DataObject
) -> None:
    leaves, index, size = case
    proof = inclusion_proof(leaves, index, size)
    leaf = leaf_hash(leaves[index])
    root = root_hash(leaves[:size])
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra hash")

    altered: dict[str, tuple[bytes, int, int, list[bytes], bytes]] = {
        "leaf bit": (_flip(leaf, bit), index, size, proof, root),
        "root bit": (leaf, index, size, proof, _flip(root, bit)),
        "appended hash": (leaf, index, size, [*proof, extra], root),
        "prepended hash": (leaf, index, size, [extra, *proof], root),
    }
    for i in range(len(proof)):
        flipped = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        altered[f"proof[{i}] bit"] = (leaf, index, size, flipped, root)
        altered[f"proof[{i}] dropped"] = (leaf, index, size, proof[:i] + proof[i + 1 :], root)
    if size > 1:
        other_index = data.draw(st.integers(0, size - 1).filter(lambda j: j != index))
        altered["wrong index"] = (leaf, other_index, size, proof, root)
    if len(leaves) > index + 1:
        other_size = data.draw(
            st.integers(index + 1, len(leaves)).filter(lambda n: n != size), label="other size"
        )
        # The true root of the other size: the proof is for another tree.
        other_root = root_hash(leaves[:other_size])
        altered["wrong size"] = (leaf, index, other_size, proof, other_root)

    for what, args in altered.items():
        assert not verify_inclusion(*args), what


@settings(deadline=None)
@given(case=_consistency_cases(), bit=st.integers(0, 255), data=st.data())
def test_every_consistency_alteration_fails(
    case: tuple[list[bytes], int, int], bit: int, data: st.DataObject
) -> None:
    leaves, size1, size2 = case
    proof = consistency_proof(leaves, size1, size2)
    root1, root2 = root_hash(leaves[:size1]), root_hash(leaves[:size2])
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra hash")

    altered: dict[str, tuple[int, int, bytes, bytes, list[bytes]]] = {
        "root1 bit": (size1, size2, _flip(root1, bit), root2, proof),
        "root2 bit": (size1, size2, root1, _flip(root2, bit), proof),
        "appended hash": (size1, size2, root1, root2, [*proof, extra]),
        "prepended hash": (size1, size2, root1, root2, [extra, *proof]),
    }
    for i in range(len(proof)):
        flipped = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        altered[f"proof[{i}] bit"] = (size1, size2, root1, root2, flipped)
        altered[f"proof[{i}] dropped"] = (size1, size2, root1, root2, proof[:i] + proof[i + 1 :])
    if size2 > 1:
        # True roots of the other sizes: the proof is for another pair of trees.
        other1 = data.draw(st.integers(1, size2).filter(lambda n: n != size1), label="other size1")
        altered["wrong size1"] = (other1, size2, root_hash(leaves[:other1]), root2, proof)
    if len(leaves) > size1:
        other2 = data.draw(
            st.integers(size1, len(leaves)).filter(lambda n: n != size2), label="other size2"
        )
        altered["wrong size2"] = (size1, other2, root1, root_hash(leaves[:other2]), proof)

    for what, args in altered.items():
        assert not verify_consistency(*args), what


# verify_* never raise ------------------------------------------------------------------------

_hashes = st.binary(max_size=40) | st.binary(min_size=32, max_size=32)
_garbage = st.none() | st.text(max_size=5) | st.floats() | st.tuples(st.integers())


@given(
    leaf=_hashes,
    index=st.integers(),
    size=st.integers(),
    proof=st.lists(_hashes, max_size=70),
    root=_hashes,
)
def test_verify_inclusion_never_raises(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root) in (True, False)


@given(
    size1=st.integers(),
    size2=st.integers(),
    root1=_hashes,
    root2=_hashes,
    proof=st.lists(_hashes, max_size=70),
)
def test_verify_consistency_never_raises(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    assert verify_consistency(size1, size2, root1, root2, proof) in (True, False)


@given(position=st.integers(0, 4), value=_garbage)
def test_verify_refuses_values_of_the_wrong_type(position: int, value: Any) -> None:
    good_inclusion: list[Any] = [leaf_hash(b"a"), 0, 1, [], leaf_hash(b"a")]
    good_consistency: list[Any] = [1, 1, leaf_hash(b"a"), leaf_hash(b"a"), []]
    assert verify_inclusion(*good_inclusion)
    assert verify_consistency(*good_consistency)
    good_inclusion[position] = value
    good_consistency[position] = value
    assert not verify_inclusion(*good_inclusion)
    assert not verify_consistency(*good_consistency)


# Typed failures ------------------------------------------------------------------------------


def test_check_inclusion_reports_both_roots() -> None:
    leaves = _leaves(b"", 7)
    root = root_hash(leaves)
    wrong = _flip(root, 0)
    message = f"expected {wrong.hex()}, calculated {root.hex()}"
    with pytest.raises(RootMismatch, match=message) as exc:
        check_inclusion(leaf_hash(leaves[3]), 3, 7, inclusion_proof(leaves, 3, 7), wrong)
    assert exc.value.expected == wrong
    assert exc.value.calculated == root


@pytest.mark.parametrize("size1", [3, 4])  # the old root is used differently for 2**k
def test_check_consistency_reports_both_roots(size1: int) -> None:
    leaves = _leaves(b"", 7)
    root1, root2 = root_hash(leaves[:size1]), root_hash(leaves)
    proof = consistency_proof(leaves, size1, 7)

    with pytest.raises(RootMismatch) as exc:
        check_consistency(size1, 7, root1, _flip(root2, 9), proof)
    assert (exc.value.expected, exc.value.calculated) == (_flip(root2, 9), root2)

    if size1 != 4:  # a complete old tree is its own proof hash: its root cannot mismatch
        with pytest.raises(RootMismatch) as exc:
            check_consistency(size1, 7, _flip(root1, 9), root2, proof)
        assert (exc.value.expected, exc.value.calculated) == (_flip(root1, 9), root1)


def test_check_consistency_of_equal_sizes() -> None:
    root = root_hash(_leaves(b"", 5))
    check_consistency(5, 5, root, root, [])
    with pytest.raises(RootMismatch) as exc:
        check_consistency(5, 5, root, _flip(root, 1), [])
    assert (exc.value.expected, exc.value.calculated) == (_flip(root, 1), root)
    with pytest.raises(ProofError, match="equal tree sizes must be empty"):
        check_consistency(5, 5, root, root, [root])


def test_consistency_from_the_empty_tree_is_refused() -> None:
    root = root_hash(_leaves(b"", 5))
    assert not verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="from the empty tree is not defined"):
        check_consistency(0, 5, EMPTY_ROOT, root, [])


H = b"\x07" * 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((H[:31], 0, 1, [], H), "leaf hash must be 32 bytes"),
        ((H, 0, 1, [], H + b"\x00"), "root must be 32 bytes"),
        ((H, 0, 2, [H[:31]], H), "proof hash 0 must be 32 bytes"),
        ((H, 0, 2, H, H), "proof must be a sequence of hashes"),
        ((H, -1, 1, [], H), "leaf index must be an integer in"),
        ((H, 0, 2**64, [], H), "tree size must be an integer in"),
        ((H, 1, 1, [], H), "leaf index 1 is not below tree size 1"),
        ((H, 0, 1, [H], H), "has 1 hashes, too many for leaf 0 in a tree of size 1"),
        ((H, 0, 3, [H], H), "has 1 hashes, too few for leaf 0 in a tree of size 3"),
    ],
)
def test_malformed_inclusion_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ProofError, match=message):
        check_inclusion(*args)
    assert not verify_inclusion(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 2, H[:1], H, [H]), "first root must be 32 bytes"),
        ((1, 2, H, b"", [H]), "second root must be 32 bytes"),
        ((-1, 2, H, H, [H]), "first tree size must be an integer in"),
        ((1, 2**64, H, H, [H]), "second tree size must be an integer in"),
        ((3, 2, H, H, [H]), "first tree size 3 is larger than second tree size 2"),
        ((1, 2, H, H, []), "from size 1 to size 2 is empty"),
        ((1, 2, H, H, [H, H]), "from size 1 to size 2 has too many hashes"),
        ((3, 8, H, H, [H]), "from size 3 to size 8 has too few hashes"),
    ],
)
def test_malformed_consistency_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ProofError, match=message):
        check_consistency(*args)
    assert not verify_consistency(*args)


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0), (0, 9)])
def test_inclusion_proof_refuses_leaves_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="needs 0 <= index < size <= number of leaves"):
        inclusion_proof(_leaves(b"", 8), index, size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (4, 3), (1, 9), (-1, 3)])
def test_consistency_proof_refuses_sizes_outside_the_log(size1: int, size2: int) -> None:
    with pytest.raises(ValueError, match="needs 0 < size1 <= size2 <= number of leaves"):
        consistency_proof(_leaves(b"", 8), size1, size2)
