"""The deployment of docker-compose.yml without Docker: every role a ``medtrace serve --role``
process on this machine, against one PostgreSQL database and one MQTT broker.

Two API processes (stateless replicas), sequencers (one leads through the advisory lock),
a scheduler, a bridge and a witness, sharing the settings compose gives them: the log key
(a shared volume there, a shared file here), the place salt, the broker. Each process names
itself to PostgreSQL (``application_name``), so ``pg_stat_activity`` tells which sequencer
holds the lock. Also the checks a deployment must pass from outside: the audit, the
consistency of successive checkpoints, and a census of the ledger's leaves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from medtrace import ledger
from medtrace.ledger import NoteSigner, NoteVerifier, open_checkpoint, verify_consistency
from medtrace.protocol.envelope import event_id
from medtrace.protocol.keys import write_key_file

from .iot import forget_session, wait_until
from .live import MEDTRACE, LiveServer, RoleProcess, free_port, start_role, start_server

LOG_ORIGIN = "127.0.0.1/medtrace"
WITNESS_NAME = "topology-witness"

LeafKey = tuple[str, ...]
"""What a leaf records: ``("event", event_id)``, ``("reading", sensor_id, seq)`` or
``("other", sha256)`` for alerts and lot records."""


def named(database_url: str, application_name: str) -> str:
    """``database_url`` whose connections introduce themselves as ``application_name``."""
    url = make_url(database_url)
    return url.update_query_dict({"application_name": application_name}).render_as_string(
        hide_password=False
    )


@dataclass
class Topology:
    """The running processes of one deployment and what they share."""

    folder: Path
    database_url: str
    env: dict[str, str]
    log_vkey: str
    apis: list[LiveServer] = field(default_factory=list)
    sequencers: list[RoleProcess] = field(default_factory=list)
    scheduler: RoleProcess | None = None
    bridge: RoleProcess | None = None
    witness: RoleProcess | None = None
    witness_vkey: str | None = None
    bridge_env: dict[str, str] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        """An engine on the deployment's database (the first API's, for the checks)."""
        return self.apis[0].engine

    def start_api(self, index: int, port: int | None = None) -> LiveServer:
        """Start API replica ``index`` (again, on ``port`` after a crash)."""
        server = start_server(
            database_url=named(self.database_url, f"api-{index}"),
            data_dir=self.folder / f"api-{index}",
            env=self.env,
            port=port,
        )
        if index < len(self.apis):
            self.apis[index].stop()  # already dead: this only releases its engine
            self.apis[index] = server
        else:
            self.apis.append(server)
        return server

    def start_sequencer(self, index: int) -> RoleProcess:
        """Start sequencer ``index`` (again); it leads or stands by."""
        process = self._role("sequencer", f"sequencer-{index}")
        if index < len(self.sequencers):
            self.sequencers[index] = process
        else:
            self.sequencers.append(process)
        return process

    def start_bridge(self, token: str, broker_port: int) -> RoleProcess:
        """Start the bridge relaying into the first API with ``token`` (again: same session)."""
        self.bridge_env = self.bridge_env or {
            "MEDTRACE_BRIDGE_TOKEN": token,
            "MEDTRACE_BRIDGE_CLIENT_ID": f"medtrace-topology-{secrets.token_hex(4)}",
            "MEDTRACE_BRIDGE_SESSION_EXPIRY": "600",
            "MEDTRACE_MQTT_PORT": str(broker_port),
            "MEDTRACE_PUBLIC_URL": self.apis[0].url,
        }
        earlier = self.bridge.log().count("relaying") if self.bridge else 0  # the same log
        bridge = self.bridge = self._role("bridge", "bridge", extra=self.bridge_env)
        # Until it has subscribed once, readings reach no one (the broker keeps no session).
        wait_until(lambda: bridge.log().count("relaying") > earlier, 60, "the bridge to subscribe")
        return bridge

    def _role(
        self, role: str, name: str, extra: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> RoleProcess:
        return start_role(
            role,
            database_url=named(self.database_url, name),
            data_dir=self.folder / name,
            name=name,
            env={**self.env, **(extra or {})},
            args=args,
        )

    def leading_sequencer(self) -> RoleProcess | None:
        """The sequencer whose database session holds an advisory lock, if any."""
        with self.engine.connect() as conn:
            holders = set(
                conn.scalars(
                    text(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                    )
                )
            )
        return next((s for i, s in enumerate(self.sequencers) if f"sequencer-{i}" in holders), None)

    def audit(self) -> subprocess.CompletedProcess[str]:
        """``medtrace audit`` of the database with the log key, as an operator runs it."""
        return subprocess.run(
            [str(MEDTRACE), "audit"],
            env={**os.environ, **self.env, "MEDTRACE_DATABASE_URL": self.database_url},
            capture_output=True,
            text=True,
            timeout=600,
        )

    def checkpoint(self, api: int = 0) -> str:
        """The latest signed checkpoint note, as an API replica serves it."""
        response = httpx.get(f"{self.apis[api].url}/api/v1/ledger/checkpoint", timeout=30)
        response.raise_for_status()
        return response.text

    def wait_until_integrated(self, timeout: float = 60) -> str:
        """The checkpoint once it covers every committed leaf (nothing left to sequence)."""

        def covered() -> bool:
            with self.engine.connect() as conn:
                committed = ledger.committed_size(conn)
            response = httpx.get(f"{self.apis[0].url}/api/v1/ledger/checkpoint", timeout=30)
            return response.status_code == 200 and int(response.text.splitlines()[1]) == committed

        wait_until(covered, timeout, "a checkpoint covering every committed leaf")
        return self.checkpoint()

    def assert_consistent(self, older: str, newer: str) -> None:
        """Both notes are signed by the log, and the newer tree extends the older one
        (RFC 9162 consistency proof from the API, checked here)."""
        verifier = NoteVerifier.from_vkey(self.log_vkey)
        first, second = open_checkpoint(older, verifier), open_checkpoint(newer, verifier)
        assert first.size <= second.size, (first.size, second.size)
        if first.size in (0, second.size):
            assert first.size == 0 or first.root_hash == second.root_hash
            return
        proof = httpx.get(
            f"{self.apis[-1].url}/api/v1/ledger/proof/consistency",
            params={"from": first.size, "to": second.size},
            timeout=30,
        ).json()
        assert verify_consistency(
            first.size,
            second.size,
            first.root_hash,
            second.root_hash,
            [bytes.fromhex(h) for h in proof],
        ), f"no consistency between sizes {first.size} and {second.size}"

    def stop(self) -> None:
        """Stop every process, the bridge first (its broker session is then forgotten)."""
        if self.bridge is not None:
            self.bridge.stop()
            port = int(self.bridge_env["MEDTRACE_MQTT_PORT"])
            forget_session(self.bridge_env["MEDTRACE_BRIDGE_CLIENT_ID"], port=port)
        for process in [*self.sequencers, self.scheduler, self.witness]:
            if process is not None:
                process.stop()
        for api in self.apis:
            api.stop()


def ledger_census(engine: Engine) -> Counter[LeafKey]:
    """How many leaves record each event, each reading and each other thing: a count above
    one is a duplicate in the ledger, whatever the store's constraints say."""
    table = ledger.leaves_table
    census: Counter[LeafKey] = Counter()
    start = 0
    while True:
        with engine.connect() as conn:
            page = conn.execute(
                select(table.c.idx, table.c.data)
                .where(table.c.idx >= start)
                .order_by(table.c.idx)
                .limit(5000)
            ).all()
        if not page:
            return census
        census.update(_leaf_key(bytes(data)) for _, data in page)
        start = int(page[-1][0]) + 1


def _leaf_key(data: bytes) -> LeafKey:
    leaf = json.loads(data)
    if isinstance(leaf, dict) and "station_id" in leaf and "event" in leaf:
        return ("event", event_id(leaf["event"]))
    if isinstance(leaf, dict) and "reading" in leaf:
        return ("reading", str(leaf["sensor_id"]), str(leaf["reading"]["seq"]))
    return ("other", hashlib.sha256(data).hexdigest())


@contextmanager
def running_topology(
    database_url: str,
    folder: Path,
    *,
    broker_port: int,
    sequencers: int = 1,
    witness: bool = True,
    settings: dict[str, str] | None = None,
) -> Iterator[Topology]:
    """Start the deployment's processes (all but the bridge, which needs a participant's
    token: ``Topology.start_bridge``), stop them all afterwards."""
    key_file = folder / "keys" / "log.pem"
    log_vkey = NoteSigner(LOG_ORIGIN, write_key_file(key_file)).vkey
    env = {
        "MEDTRACE_LOG_KEY_PATH": str(key_file),
        "MEDTRACE_LOG_ORIGIN": LOG_ORIGIN,
        "MEDTRACE_RUN_SEQUENCER": "false",
        "MEDTRACE_BATCH_INTERVAL": "0.2",
        "MEDTRACE_PLACE_SALT": secrets.token_hex(32),
        "MEDTRACE_MQTT_HOST": "127.0.0.1",
        "MEDTRACE_MQTT_PORT": str(broker_port),
        "COLUMNS": "200",  # the witness prints its key on one line
        **(settings or {}),
    }
    topology = Topology(folder, database_url, env, log_vkey)
    try:
        if witness:
            _start_witness(topology)
        for index in range(2):
            topology.start_api(index)
        for index in range(sequencers):
            topology.start_sequencer(index)
        topology.scheduler = topology._role("scheduler", "scheduler")
        yield topology
    finally:
        topology.stop()


def _start_witness(topology: Topology) -> None:
    """The witness first: the sequencer is told its URL and key, as compose's comment says."""
    port = free_port()
    topology.witness = topology._role(
        "witness",
        "witness",
        extra={
            "MEDTRACE_WITNESS_NAME": WITNESS_NAME,
            "MEDTRACE_WITNESS_LOG_KEYS": json.dumps([topology.log_vkey]),
        },
        args=("--port", str(port)),
    )
    witness = topology.witness
    wait_until(lambda: "witness key: " in witness.log(), 30, "the witness to print its key")
    match = re.search(r"witness key: (\S+)", witness.log())
    assert match, witness.log()
    topology.witness_vkey = match.group(1)
    topology.env |= {
        "MEDTRACE_WITNESS_URLS": json.dumps([f"http://127.0.0.1:{port}"]),
        "MEDTRACE_WITNESS_KEYS": json.dumps([topology.witness_vkey]),
    }
