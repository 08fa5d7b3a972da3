"""Start ``medtrace serve`` as a real process and talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from medtrace import ledger
from medtrace.db import create_db_engine
from medtrace.models import Event, Unit
from medtrace.models.alerts import Alert

MEDTRACE = Path(sys.executable).parent / "medtrace"


#: Test chains ship and receive within milliseconds: no minimum transit time, so only a receipt
#: stamped before its shipment is suspect (a module testing the minimum sets its own).
QUICK_TRANSIT = {"MEDTRACE_MIN_TRANSIT_SECONDS": "0"}


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A running server process, its URL, its database and its log output."""

    url: str
    database_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = create_db_engine(self.database_url)

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def snapshot(self) -> tuple[int, int, list[tuple[str, ...]]]:
        """Custody leaves, events and every unit's custody: equal snapshots before and after a
        refused request prove that it changed nothing.

        Alert leaves are left out: a refused attempt may rightly leave evidence (a serial never
        commissioned raises a suspect alert, itself a leaf); tests that expect one check the
        alerts themselves."""
        with self.engine.connect() as conn:
            alert_leaves = conn.execute(
                select(func.count()).select_from(Alert).where(Alert.leaf_index.is_not(None))  # type: ignore[union-attr]
            ).scalar_one()
            leaves = ledger.committed_size(conn) - alert_leaves
            events = conn.execute(select(func.count()).select_from(Event)).scalar_one()
            units = conn.execute(
                select(
                    Unit.gtin, Unit.serial, Unit.state, Unit.holder_gln, Unit.destination_gln
                ).order_by(Unit.gtin, Unit.serial)
            ).all()
        return leaves, events, [tuple(map(str, unit)) for unit in units]

    def leaves(self) -> int:
        """The log's size: every committed leaf, alerts' included."""
        with self.engine.connect() as conn:
            return ledger.committed_size(conn)

    def wait_for_checkpoint(self, size: int, timeout: float = 20.0) -> str:
        """The signed checkpoint note once the log has integrated ``size`` leaves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = httpx.get(f"{self.url}/api/v1/ledger/checkpoint")
            if response.status_code == 200 and int(response.text.splitlines()[1]) >= size:
                return response.text
            time.sleep(0.05)
        raise AssertionError(f"no checkpoint of size {size} within {timeout} s\n{self.log()}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and release the database."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.engine.dispose()


def start_server(
    *,
    database_url: str,
    data_dir: Path,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    port: int | None = None,
    workers: int = 1,
) -> LiveServer:
    """Start ``medtrace serve`` on ``port`` (default: a free one) with ``workers`` worker
    processes and wait until it answers; ``env`` adds or overrides settings (``MEDTRACE_*``)
    for this server."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    process_env = {
        **os.environ,
        "MEDTRACE_DATA_DIR": str(data_dir),
        "MEDTRACE_DATABASE_URL": database_url,
        "MEDTRACE_PUBLIC_URL": url,
        "MEDTRACE_BATCH_INTERVAL": "0.1",
        **QUICK_TRANSIT,
        **(env or {}),
    }
    log_path = data_dir / "server.log"
    with log_path.open("ab") as log:  # a restart in the same folder keeps the earlier log
        process = subprocess.Popen(
            [str(MEDTRACE), "serve", "--port", str(port), "--workers", str(workers)],
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    live = LiveServer(
        url=url, database_url=database_url, data_dir=data_dir, process=process, log_path=log_path
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}\n{live.log()}")
        try:
            if httpx.get(f"{url}/api/v1/ledger/public-key").status_code == 200:
                return live
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    live.stop()
    raise AssertionError(f"the server did not answer within {timeout} s\n{live.log()}")


@dataclass
class RoleProcess:
    """A ``medtrace serve --role ROLE`` process and its log."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup (a crash, an OOM kill, a pulled plug)."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_role(
    role: str,
    *,
    database_url: str,
    data_dir: Path,
    name: str,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> RoleProcess:
    """Start one role of a deployment as its own process (as docker-compose.yml does), with
    ``args`` after ``serve --role ROLE``; a restart under the same name appends to its log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}.log"
    process_env = {
        **os.environ,
        "MEDTRACE_DATA_DIR": str(data_dir),
        "MEDTRACE_DATABASE_URL": database_url,
        **QUICK_TRANSIT,
        **(env or {}),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(MEDTRACE), "serve", "--role", role, *args],
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return RoleProcess(role, process, log_path)


def run_cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``medtrace`` command against the server's database and URL."""
    env = {
        **os.environ,
        "MEDTRACE_DATA_DIR": str(server.data_dir),
        "MEDTRACE_DATABASE_URL": server.database_url,
        "MEDTRACE_PUBLIC_URL": server.url,
    }
    return subprocess.run(
        [str(MEDTRACE), *args], env=env, capture_output=True, text=True, timeout=120
    )
