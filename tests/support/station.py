"""A scan station as people run it: ``medtrace scan`` in its own process, with its own key
file and outbox, registered for a participant of the test chain."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from medtrace.demo import Enrolled
from medtrace.protocol.keys import b64, public_key_raw, write_key_file

from .live import MEDTRACE


@dataclass
class ScanStation:
    """The environment of one station's ``medtrace scan`` runs."""

    station_id: str
    env: dict[str, str]
    outbox: Path

    def run(
        self, *args: str, codes: list[str] | None = None, timeout: float = 300, color: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``medtrace scan ARGS`` with ``codes`` typed one a line, as a wedge scanner does."""
        env = {**self.env, **({"FORCE_COLOR": "1", "COLUMNS": "200"} if color else {})}
        return subprocess.run(
            [str(MEDTRACE), "scan", *args],
            input="".join(f"{code}\n" for code in codes or []),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``medtrace scan ARGS`` reading codes from a pipe the test writes to."""
        return subprocess.Popen(
            [str(MEDTRACE), "scan", *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def scan_station(member: Enrolled, url: str, folder: Path, station_id: str) -> ScanStation:
    """A new station of ``member``: key file written (0600) and registered over HTTP."""
    key_file = folder / f"{station_id}.pem"
    key = write_key_file(key_file)
    member.api.register_station(station_id, b64(public_key_raw(key)))
    outbox = folder / f"{station_id}-outbox.db"
    env = {
        **os.environ,
        "MEDTRACE_STATION_ID": station_id,
        "MEDTRACE_STATION_GLN": member.gln,
        "MEDTRACE_STATION_KEY_FILE": str(key_file),
        "MEDTRACE_TOKEN": member.token,
        "MEDTRACE_PUBLIC_URL": url,
        "MEDTRACE_OUTBOX": str(outbox),
        "COLUMNS": "200",
    }
    return ScanStation(station_id, env, outbox)
