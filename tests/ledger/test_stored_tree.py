"""The stored tree (tlog tiles in SQL) against the pure RFC 9162 functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, create_engine, insert, update

from medtrace.ledger import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    sql,
    verify_consistency,
    verify_inclusion,
)
from medtrace.ledger._tree import TILE_WIDTH, extend_tiles, tiles_at_edge

LEAVES = [f"leaf {i}".encode() for i in range(1200)]


def new_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    sql.ledger_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(sql.head_table), sql.initial_rows())
        conn.execute(insert(sql.tree_table), sql.initial_tree_rows())
    return engine


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A log of 1200 leaves integrated in uneven steps (across tile and level boundaries)."""
    engine = new_engine(tmp_path_factory.mktemp("tree") / "log.db")
    done = 0
    for step in (1, 2, 253, 1, 255, 300, 1, 387):
        with engine.begin() as conn:
            sql.begin_append(conn)
            sql.append_leaves(conn, LEAVES[done : done + step])
            assert sql.integrate(conn, limit=10_000) == (done, done + step)
        done += step
    assert done == len(LEAVES)
    yield engine
    engine.dispose()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_roots_and_proofs_for_any_size_equal_the_pure_functions(
    grown: Engine, data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(LEAVES)))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    with grown.connect() as conn:
        root = sql.root_at(conn, size)
        proof = sql.inclusion_proof_at(conn, index, size)
        consistency = sql.consistency_proof_at(conn, old, size)
        old_root = sql.root_at(conn, old)
    assert root == root_hash(LEAVES[:size])
    assert proof == inclusion_proof(LEAVES, index, size)
    assert consistency == consistency_proof(LEAVES, old, size)
    assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, root)
    assert verify_consistency(old, size, old_root, root, consistency)
    # Every one-hash alteration fails.
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[at] = bytes([bad[at][0] ^ 1]) + bad[at][1:]
        assert not verify_inclusion(leaf_hash(LEAVES[index]), index, size, bad, root)
    if consistency:
        at = data.draw(st.integers(0, len(consistency) - 1))
        bad = [*consistency]
        bad[at] = bytes([bad[at][0] ^ 1]) + bad[at][1:]
        assert not verify_consistency(old, size, old_root, root, bad)


def test_tiles_hold_level_zero_leaf_hashes_and_level_one_subtree_roots(grown: Engine) -> None:
    with grown.connect() as conn:
        tiles = sql.read_tiles(conn, [(0, 0), (0, 4), (1, 0)])
    assert tiles[(0, 0)] == b"".join(leaf_hash(d) for d in LEAVES[:TILE_WIDTH])
    assert len(tiles[(0, 4)]) == (1200 - 4 * TILE_WIDTH) * 32, "partial tile of width 176"
    assert tiles[(1, 0)][:32] == root_hash(LEAVES[:TILE_WIDTH])
    assert len(tiles[(1, 0)]) == 4 * 32


@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=6))
def test_extending_in_any_steps_gives_the_same_tiles(sizes: list[int]) -> None:
    hashes = [leaf_hash(str(i).encode()) for i in range(sum(sizes))]
    whole = extend_tiles(0, {}, b"".join(hashes))
    tiles: dict[tuple[int, int], bytes] = {}
    done = 0
    for step in sizes:
        edge = {k: tiles[k] for k in tiles_at_edge(done) if k in tiles}
        tiles.update(extend_tiles(done, edge, b"".join(hashes[done : done + step])))
        done += step
    assert tiles == whole


def test_a_proof_past_the_integrated_size_is_refused(tmp_path: Path) -> None:
    engine = new_engine(tmp_path / "log.db")
    with engine.begin() as conn:
        sql.append_leaves(conn, LEAVES[:5])
    with engine.connect() as conn, pytest.raises(ValueError, match="does not reach size 5"):
        sql.root_at(conn, 5)


def test_integration_cannot_apply_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = new_engine(tmp_path / "log.db")
    with engine.begin() as conn:
        sql.append_leaves(conn, LEAVES[:6])
    with engine.begin() as conn:
        assert sql.integrate(conn, limit=3) == (0, 3)
        assert sql.integrate(conn, limit=2) == (3, 5)
    original = sql.stored_leaf_hashes

    def moved_meanwhile(conn: Connection, start: int, end: int) -> bytes:
        # Another integration moves the size between this one's read and its write.
        conn.execute(update(sql.tree_table).values(size=6))
        return original(conn, start, end)

    monkeypatch.setattr(sql, "stored_leaf_hashes", moved_meanwhile)
    with pytest.raises(sql.TreeMoved), engine.begin() as conn:
        sql.integrate(conn, limit=10)
    with engine.connect() as conn:
        assert sql.integrated_size(conn) == 5, "the failed integration wrote nothing"


def test_the_stored_tree_gives_the_rfc_6962_vectors(tmp_path: Path) -> None:
    vectors = json.loads((Path(__file__).parent / "vectors" / "rfc6962.json").read_text())
    leaves = [bytes.fromhex(leaf) for leaf in vectors["leaves"]]
    engine = new_engine(tmp_path / "log.db")
    for leaf in leaves:  # one integration per leaf: every size is a stored tree of its own
        with engine.begin() as conn:
            sql.append_leaves(conn, [leaf])
            sql.integrate(conn, limit=1)
    with engine.connect() as conn:
        for case in vectors["roots"]:
            assert sql.root_at(conn, case["size"]).hex() == case["root_hex"]
        for case in vectors["inclusion"]:
            proof = sql.inclusion_proof_at(conn, case["leaf_index"], case["tree_size"])
            assert [h.hex() for h in proof] == case["path_hex_list"]
        for case in vectors["consistency"]:
            proof = sql.consistency_proof_at(conn, case["size1"], case["size2"])
            assert [h.hex() for h in proof] == case["proof_hex_list"]
    engine.dispose()
