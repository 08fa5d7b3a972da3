"""Portal accounts: scrypt password hashes, addresses, weak passwords, and the CLI's prompt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medtrace.errors import InvalidInput
from medtrace.services.portal_accounts import (
    check_password_strength,
    hash_password,
    normalise_email,
    password_matches,
)
from support.chain import Chain

MEDTRACE = Path(sys.executable).parent / "medtrace"


def test_a_password_hash_is_salted_scrypt_and_checks_only_its_password() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")

    assert first.startswith("scrypt$17$8$1$") and first != second, "a fresh salt each time"
    assert "correct horse" not in first
    assert password_matches("correct horse battery", first)
    assert password_matches("correct horse battery", second)
    assert not password_matches("correct horse batterY", first)


def test_an_unknown_hash_scheme_is_a_bug_not_a_mismatch() -> None:
    with pytest.raises(ValueError, match="unknown password hash scheme"):
        password_matches("x", "md5$1$1$1$AA$AA")


@pytest.mark.parametrize("address", ["nobody", "a@b", "@example.cn", "a b@example.cn"])
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(InvalidInput, match="not an e-mail address"):
        normalise_email(address)


def test_addresses_are_compared_lower_case() -> None:
    assert normalise_email("  Inspector@SMPA.example.CN ") == "inspector@smpa.example.cn"


def test_a_short_password_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters") as refused:
        check_password_strength("short")
    assert refused.value.rule == "portal.weak_password"


def test_the_cli_asks_for_the_password_twice_and_refuses_a_weak_one(chain: Chain) -> None:
    env = {**os.environ, "MEDTRACE_DATABASE_URL": chain.server.database_url}
    command = [str(MEDTRACE), "portal", "user", "add", "--gln", chain.hub.gln, "--ask"]

    asked = subprocess.run(
        [*command, "--email", "dock@hub.example.cn"],
        input="a long enough passphrase\na long enough passphrase\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    weak = subprocess.run(
        [*command, "--email", "other@hub.example.cn"],
        input="short\nshort\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert asked.returncode == 0, asked.stderr
    assert "account dock@hub.example.cn" in asked.stdout and "password:" not in asked.stdout
    assert weak.returncode == 1 and "portal.weak_password" in weak.stderr
