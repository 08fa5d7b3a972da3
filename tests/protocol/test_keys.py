"""Key files created by several processes at once: one key, whole, private; and the secrets
derived from the log key."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from medtrace.api.main import create_app
from medtrace.config import Settings
from medtrace.protocol.keys import derive_secret, load_or_create_key
from support.keys import public_key_of


def test_processes_starting_together_agree_on_one_log_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log.pem"
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        keys = pool.map(public_key_of, [str(path)] * 32)

    assert len(set(keys)) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["log.pem"], "no temporary left"


def test_secrets_derived_from_the_log_key_are_stable_and_separate(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "log.pem")
    again = load_or_create_key(tmp_path / "log.pem")
    other = load_or_create_key(tmp_path / "other.pem")

    assert derive_secret(key, "place salt") == derive_secret(again, "place salt")
    assert derive_secret(key, "place salt") != derive_secret(key, "session secret")
    assert derive_secret(key, "place salt") != derive_secret(other, "place salt")
    assert len(bytes.fromhex(derive_secret(key, "place salt"))) == 32


def test_api_replicas_on_one_log_key_hash_places_alike(tmp_path: Path) -> None:
    """Two API processes (or one restarted) sharing the log key agree on the place salt and
    the session secret unless the settings name them; otherwise one network verifying a pack
    through two replicas would count as two places."""
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    first, second = create_app(settings), create_app(settings)
    named = create_app(
        settings.model_copy(
            update={"web": settings.web.model_copy(update={"place_salt": "chosen"})}
        )
    )

    for field in ("place_salt", "session_secret"):
        value = getattr(first.state.settings.web, field)
        assert value and value == getattr(second.state.settings.web, field)
    assert named.state.settings.web.place_salt == "chosen"
    assert named.state.settings.web.session_secret == first.state.settings.web.session_secret
