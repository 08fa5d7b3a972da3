"""The processes of a deployment: ``medtrace serve --role ROLE``.

One image, one command, one role per process, so that docker-compose.yml (and any other
orchestrator) can run, scale and restart each part on its own:

- ``api``: the HTTP API, portal and resolver (stateless; run as many as needed). With
  ``MEDTRACE_RUN_SEQUENCER=true`` (the one-machine default) it also runs a sequencer.
- ``sequencer``: integrates the log and signs checkpoints; one leads, others stand by.
- ``scheduler``: runs the rules on their schedules; one leads, others stand by.
- ``bridge``: relays MQTT sensor readings into the capture API (run several with a shared
  subscription group).
- ``witness``: cosigns the checkpoints of the logs it is told to trust (c2sp.org/tlog-witness);
  it normally belongs to another organisation.

Every option comes from the settings (``MEDTRACE_*``). Every role but ``api`` and ``witness``
stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from medtrace.config import Settings
from medtrace.db import create_db_engine, upgrade_schema, writer_turn
from medtrace.ledger import (
    Cosigner,
    NoteSigner,
    NoteVerifier,
    Sequencer,
    Witness,
    WitnessState,
    witness_clients,
)
from medtrace.protocol.keys import load_or_create_key

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from medtrace.iot.bridge import BridgeStats

log = logging.getLogger(__name__)


class ProcessRole(StrEnum):
    """What a process does."""

    API = "api"
    SEQUENCER = "sequencer"
    SCHEDULER = "scheduler"
    BRIDGE = "bridge"
    WITNESS = "witness"


def freeze_startup_heap() -> None:
    """Exempt every object alive now (modules, models, routes: a long-lived process's
    startup) from garbage collection.

    A full collection walks every tracked object. The API's startup heap is large, and
    capturing readings at 3 000/s allocates enough to run one every second or two; each took
    0.1 to 0.16 s (measured), during which nothing else in the process moves. Frozen, a full
    collection walks only what was allocated since (0.01 s).
    """
    gc.collect()
    gc.freeze()


def _until_signalled(work: Callable[[threading.Event], None]) -> None:
    """Run ``work(stop)`` until SIGTERM or SIGINT sets ``stop``."""
    freeze_startup_heap()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    work(stop)


def run_sequencer(settings: Settings) -> None:
    """Lead (or stand by to lead) the log's integration until stopped."""
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    signer = NoteSigner(settings.ledger.origin, load_or_create_key(settings.resolved_log_key_path))
    _until_signalled(log_sequencer(settings, engine, signer).run)


def log_sequencer(settings: Settings, engine: Engine, signer: NoteSigner) -> Sequencer:
    """The log's sequencer as the settings configure it, taking SQLite writers' turns like
    every other writer: the sequencer role runs one alone, a one-machine API process one in
    a thread of its own."""
    return Sequencer(
        engine,
        signer,
        batch_interval=settings.ledger.batch_interval,
        batch_size=settings.ledger.batch_size,
        witnesses=witness_clients(settings.ledger.witness_urls, settings.ledger.witness_keys),
        turn=partial(writer_turn, engine),
    )


def run_scheduler_role(settings: Settings) -> None:
    """Lead (or stand by to lead) the scheduled rules until stopped."""
    from medtrace.scheduler import run_scheduler

    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    _until_signalled(lambda stop: run_scheduler(engine, settings, stop))


def run_bridge(settings: Settings) -> BridgeStats:
    """Relay readings from the broker into the capture API at ``settings.public_url`` until
    stopped; return what was relayed.

    Raises ``ValueError`` without a bridge token, and the IoT errors (``IotError``) when the
    broker or the API cannot be reached at start.
    """
    from medtrace.iot.bridge import Bridge, BridgeConfig
    from medtrace.iot.client import ReadingsClient
    from medtrace.protocol.mqtt import MqttVersion

    if not settings.bridge.token:
        raise ValueError("the bridge needs an API token: set MEDTRACE_BRIDGE_TOKEN")
    config = BridgeConfig(
        host=settings.mqtt.host,
        port=settings.mqtt.port,
        client_id=settings.bridge.client_id,
        version=MqttVersion(settings.mqtt.version),
        batch_size=settings.bridge.batch_size,
        batch_wait=settings.bridge.batch_wait,
        session_expiry=settings.bridge.session_expiry,
        share_group=settings.bridge.share_group or None,
    )
    with ReadingsClient(settings.public_url, settings.bridge.token) as api:
        relay = Bridge(config, api)
        relay.connect()
        log.warning(
            "bridge %s: relaying %s from %s:%d",
            config.client_id,
            config.topic,
            config.host,
            config.port,
        )
        _until_signalled(relay.run)
    return relay.stats


def open_witness(settings: Settings) -> Witness:
    """The witness of this installation: its key (created on first start), its durable state
    and the logs it trusts. Raises ``ValueError`` without a log to witness and
    ``CheckpointError`` for a malformed log key."""
    if not settings.witness.log_keys:
        raise ValueError("the witness trusts no log: set MEDTRACE_WITNESS_LOG_KEYS")
    logs = [NoteVerifier.from_vkey(vkey) for vkey in settings.witness.log_keys]
    cosigner = Cosigner(
        settings.witness.name, load_or_create_key(settings.resolved_witness_key_path)
    )
    settings.resolved_witness_state_path.parent.mkdir(parents=True, exist_ok=True)
    return Witness(cosigner, WitnessState(settings.resolved_witness_state_path), logs)
