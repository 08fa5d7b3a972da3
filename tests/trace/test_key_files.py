"""Key files created by several processes at once: one key, whole, private."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from medtrace.keys import load_or_create_key, public_key_raw


def _public_key_of(path: str) -> bytes:
    return public_key_raw(load_or_create_key(Path(path)))


def test_processes_starting_together_agree_on_one_log_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log.pem"
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        keys = pool.map(_public_key_of, [str(path)] * 32)

    assert len(set(keys)) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["log.pem"], "no temporary left"
