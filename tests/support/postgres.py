"""A PostgreSQL cluster of our own, which a test may restart without disturbing anyone.

The machine's PostgreSQL is shared (other test runs, other people): a test that restarts
the database must start its own cluster with Debian's binaries (``initdb`` and ``pg_ctl`` in
``/usr/lib/postgresql/<version>/bin``) on a free port, in a folder of its own. PostgreSQL
refuses to run as root, so as root the cluster belongs to the ``postgres`` user and every
command runs as that user (``runuser``); its folder must be one that user can enter.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .live import free_port

SERVICE_USER = "postgres"


def postgres_bin() -> Path | None:
    """The newest installed server's binaries, or None if no server is installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class PrivateCluster:
    """A running cluster: its folder, its port and the URL of its ``medtrace`` database."""

    folder: Path
    port: int
    bin_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, application_name: str | None = None) -> str:
        """The SQLAlchemy URL of the ``medtrace`` database, naming the client if asked (so
        that ``pg_stat_activity`` tells which process holds what)."""
        url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/medtrace"
        return url + (f"?application_name={application_name}" if application_name else "")

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", *args]
        subprocess.run(_as_service_user(command), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._pg_ctl("-l", str(self.folder / "postgres.log"), "start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, as on a real restart."""
        self._pg_ctl("-l", str(self.folder / "postgres.log"), "-m", "fast", "restart")

    def destroy(self) -> None:
        """Stop at once and delete the folder."""
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_service_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--", *command] if os.geteuid() == 0 else command


def start_private_cluster() -> PrivateCluster:
    """initdb a new cluster (trust auth, fsync on) on a free port, start it and create the
    ``medtrace`` database. Raises ``RuntimeError`` if no PostgreSQL server is installed."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    folder = Path(tempfile.mkdtemp(prefix="medtrace-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SERVICE_USER)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = PrivateCluster(folder, free_port(), bin_dir)
    subprocess.run(
        _as_service_user(
            [str(bin_dir / "initdb"), "-D", str(cluster.data_dir), "-A", "trust", "-U", "postgres"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    with (cluster.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{folder}'\nmax_connections = 200\n"
        )
    cluster.start()
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE medtrace")
    return cluster
