"""The log over HTTP and the offline audit, on a real server process (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from medtrace.demo import GTIN
from medtrace.ledger import Checkpoint, leaf_hash, root_hash, sql
from medtrace.services.log import format_tile_index, parse_tile_path
from support.chain import Chain, new_serial
from support.live import MEDTRACE, LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def filled(chain: Chain) -> Chain:
    """300 custody leaves (more than one tile), integrated in at least two checkpoints."""
    serials = [new_serial() for _ in range(150)]
    chain.commission(*serials)
    chain.server.wait_for_checkpoint(150)
    maker = chain.maker
    maker.api.capture([maker.station.ship(GTIN, s, to=chain.hub.gln) for s in serials])
    chain.server.wait_for_checkpoint(300)
    return chain


def leaves_of(server: LiveServer, size: int) -> list[bytes]:
    with server.engine.connect() as conn:
        return [d for _, d in sql.leaf_data(conn, 0, size)]


def test_tiles_and_entry_bundles_follow_tlog_tiles(filled: Chain) -> None:
    server = filled.server
    size = Checkpoint.from_text(
        httpx.get(f"{server.url}/log/checkpoint").text.split("\n\n")[0] + "\n"
    ).size
    leaves = leaves_of(server, size)
    full = httpx.get(f"{server.url}/log/tile/0/000")
    assert full.status_code == 200
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.content == b"".join(leaf_hash(d) for d in leaves[:256])
    level1 = httpx.get(f"{server.url}/log/tile/1/000.p/1")
    assert level1.content == root_hash(leaves[:256])
    width = size - 256
    partial = httpx.get(f"{server.url}/log/tile/0/001.p/{width}")
    assert partial.content == b"".join(leaf_hash(d) for d in leaves[256:size])
    bundle = httpx.get(f"{server.url}/log/tile/entries/000").content
    first_length = int.from_bytes(bundle[:2], "big")
    assert bundle[2 : 2 + first_length] == leaves[0]
    assert httpx.get(f"{server.url}/log/tile/0/001").status_code == 404, "not full yet"
    for bad in ("0/1", "0/x000/001", "0/000.p/256", "0/000.p/0", "64/000", "0/abc"):
        response = httpx.get(f"{server.url}/log/tile/{bad}")
        assert 400 <= response.status_code < 500, bad
        assert "detail" in response.json()


def test_tile_index_paths_round_trip() -> None:
    assert format_tile_index(1234067) == "x001/x234/067"
    assert format_tile_index(5) == "005"
    assert parse_tile_path("x001/x234/067.p/8") == (1234067, 8)
    assert parse_tile_path("x001/000") == (1000, 256)


def test_checkpoint_history_is_kept_and_consistent(filled: Chain) -> None:
    history = httpx.get(f"{filled.server.url}/api/v1/ledger/checkpoints").json()
    sizes = [c["size"] for c in history]
    assert sizes == sorted(sizes) and len(sizes) >= 2
    one, two = history[0]["size"], history[-1]["size"]
    proof = httpx.get(
        f"{filled.server.url}/api/v1/ledger/proof/consistency", params={"from": one, "to": two}
    )
    assert proof.status_code == 200


def audit(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MEDTRACE_DATA_DIR": str(server.data_dir),
        "MEDTRACE_DATABASE_URL": server.database_url,
    }
    return subprocess.run(
        [str(MEDTRACE), "audit", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_audit_passes_from_the_database_and_from_the_url(filled: Chain) -> None:
    local = audit(filled.server)
    assert local.returncode == 0, local.stderr
    assert "OK" in local.stdout
    remote = audit(filled.server, "--url", filled.server.url)
    assert remote.returncode == 0, remote.stderr


def test_audit_names_the_index_of_an_altered_leaf_byte_and_of_an_altered_hash(
    filled: Chain, tmp_path: Path
) -> None:
    server = filled.server
    table = sql.leaves_table
    with server.engine.begin() as conn:
        original = conn.execute(select(table.c.data).where(table.c.idx == 137)).scalar_one()
        tampered = original.replace(b'"gln":"95', b'"gln":"94', 1)
        assert tampered != original
        conn.execute(update(table).where(table.c.idx == 137).values(data=tampered))
    try:
        found = audit(server)
        assert found.returncode == 1
        assert "first bad index 137" in found.stderr, found.stderr
    finally:
        with server.engine.begin() as conn:
            conn.execute(update(table).where(table.c.idx == 137).values(data=original))

    tiles = sql.tiles_table
    with server.engine.begin() as conn:
        blob = conn.execute(
            select(tiles.c.hashes).where(tiles.c.level == 0, tiles.c.idx == 0)
        ).scalar_one()
        bad = blob[: 42 * 32] + bytes([blob[42 * 32] ^ 0x80]) + blob[42 * 32 + 1 :]
        conn.execute(update(tiles).where(tiles.c.level == 0, tiles.c.idx == 0).values(hashes=bad))
    try:
        found = audit(server)
        assert found.returncode == 1
        assert "first bad index 42" in found.stderr, found.stderr
        served = httpx.get(f"{server.url}/log/tile/0/000").content
        assert base64.b64encode(served) == base64.b64encode(bad), "the tile is what is served"
    finally:
        with server.engine.begin() as conn:
            conn.execute(
                update(tiles).where(tiles.c.level == 0, tiles.c.idx == 0).values(hashes=blob)
            )
    assert audit(server).returncode == 0
