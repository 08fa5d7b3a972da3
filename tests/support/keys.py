"""The work of the processes a key-file test starts.

A spawned process imports the module of the function it runs: kept here, next to nothing but
the key module, each of them starts in a fraction of a second instead of importing the test
module's API application (about 5 s cold, times eight processes on two cores)."""

from __future__ import annotations

from pathlib import Path

from medtrace.protocol.keys import load_or_create_key, public_key_raw


def public_key_of(path: str) -> bytes:
    """Load the key file at ``path``, creating it if no process has yet; its public key."""
    return public_key_raw(load_or_create_key(Path(path)))
