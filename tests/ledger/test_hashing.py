"""Tests of ledger/hashing.py against the RFC 6962 / RFC 9162 hasher vectors."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from medtrace.ledger import EMPTY_ROOT, leaf_hash, node_hash
from medtrace.ledger.hashing import HASH_SIZE, LEAF_PREFIX, NODE_PREFIX

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc6962.json").read_text(encoding="utf-8")
)
HASHER_VECTORS: dict[str, dict[str, str]] = {v["what"]: v for v in VECTORS["hasher_vectors"]}


def test_prefixes_and_size_are_those_of_rfc_9162() -> None:
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"
    assert HASH_SIZE == 32


def test_empty_root_is_the_hash_of_the_empty_string() -> None:
    assert bytes.fromhex(VECTORS["empty_root_hex"]) == EMPTY_ROOT
    assert bytes.fromhex(HASHER_VECTORS["empty tree MTH({})"]["hash_hex"]) == EMPTY_ROOT


def test_leaf_hash_vector() -> None:
    vector = HASHER_VECTORS["leaf hash of 'L123456'"]
    assert leaf_hash(bytes.fromhex(vector["input_hex"])) == bytes.fromhex(vector["hash_hex"])


def test_node_hash_vector() -> None:
    vector = HASHER_VECTORS["node hash of children 'N123','N456'"]
    left, right = bytes.fromhex(vector["left_hex"]), bytes.fromhex(vector["right_hex"])
    assert node_hash(left, right) == bytes.fromhex(vector["hash_hex"])


@pytest.mark.parametrize("data", [b"", b"\x00", b"medtrace" * 100])
def test_leaf_hash_is_sha256_of_the_prefixed_data(data: bytes) -> None:
    assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    left, right = b"\x11" * 32, b"\x22" * 32
    assert leaf_hash(left + right) != node_hash(left, right)
    assert node_hash(left, right) != node_hash(right, left)
