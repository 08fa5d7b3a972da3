"""Entry bundles (c2sp.org/tlog-tiles) of a log holding a leaf stored before capture bounded
leaves to one entry (issue 18, item 4), on a real server (SQLite and PostgreSQL): the tile
server answers a clear refusal naming that leaf, never a 500, and both audits name it.

This module's server keeps the oversized leaf for good: it has a server of its own."""

from __future__ import annotations

import os
import subprocess

import httpx

from medtrace.ledger import MAX_ENTRY_SIZE, sql
from medtrace.services.log import format_tile_index
from support.chain import Chain, new_serial
from support.live import MEDTRACE, LiveServer


def audit(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MEDTRACE_DATA_DIR": str(server.data_dir),
        "MEDTRACE_DATABASE_URL": server.database_url,
    }
    return subprocess.run(
        [str(MEDTRACE), "audit", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_an_old_oversized_leaf_is_refused_by_name_and_found_by_both_audits(
    chain: Chain,
) -> None:
    server = chain.server
    chain.commission(new_serial(), new_serial(), new_serial())
    with server.engine.begin() as conn:
        sql.begin_append(conn)
        oversized = sql.append_leaves(conn, [b"{" + b" " * MAX_ENTRY_SIZE + b"}"])
    chain.commission(new_serial())
    size = server.leaves()
    server.wait_for_checkpoint(size)
    bundle = oversized // 256
    assert oversized % 256 != 0, "the leaf is not the first of its bundle"

    answer = httpx.get(
        f"{server.url}/log/tile/entries/{format_tile_index(bundle)}.p/{size - bundle * 256}"
    )

    assert answer.status_code == 404, answer.text
    detail = answer.json()["detail"]
    assert (detail["rule"], detail["leaf_index"]) == ("ledger.entry_too_large", oversized)
    assert f"leaf {oversized} has {MAX_ENTRY_SIZE + 2} bytes" in detail["message"]
    assert f"/api/v1/ledger/leaves?start={oversized}" in detail["message"]
    leaf = httpx.get(
        f"{server.url}/api/v1/ledger/leaves", params={"start": oversized, "end": oversized + 1}
    )
    assert leaf.status_code == 200, "the leaf itself stays readable"
    for found in (audit(server), audit(server, "--url", server.url)):
        assert found.returncode == 1, found.stdout + found.stderr
        assert f"first bad index {oversized}" in found.stderr, found.stderr
        assert "tlog-tiles entry" in found.stderr, found.stderr
