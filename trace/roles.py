"""The processes of a deployment: ``medtrace serve --role ROLE``.

One image, one command, one role per process, so that docker-compose.yml (and any other
orchestrator) can run, scale and restart each part on its own:

- ``api``: the HTTP API, portal and resolver (stateless; run as many as needed). With
  ``MEDTRACE_RUN_SEQUENCER=true`` (the one-machine default) it also runs a sequencer.
- ``sequencer``: integrates the log and signs checkpoints; one leads, others stand by.
- ``scheduler``: runs the rules on their schedules; one leads, others stand by.

Every role but ``api`` stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from enum import StrEnum

from medtrace.config import Settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.keys import load_or_create_key
from medtrace.ledger import NoteSigner, Sequencer, witness_clients


class ProcessRole(StrEnum):
    """What a process does."""

    API = "api"
    SEQUENCER = "sequencer"
    SCHEDULER = "scheduler"


def _until_signalled(work: Callable[[threading.Event], None]) -> None:
    """Run ``work(stop)`` until SIGTERM or SIGINT sets ``stop``."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    work(stop)


def run_sequencer(settings: Settings) -> None:
    """Lead (or stand by to lead) the log's integration until stopped."""
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    signer = NoteSigner(settings.log_origin, load_or_create_key(settings.resolved_log_key_path))
    sequencer = Sequencer(
        engine,
        signer,
        batch_interval=settings.batch_interval,
        batch_size=settings.batch_size,
        witnesses=witness_clients(settings.witness_urls, settings.witness_keys),
    )
    _until_signalled(sequencer.run)


def run_scheduler_role(settings: Settings) -> None:
    """Lead (or stand by to lead) the scheduled rules until stopped."""
    from medtrace.scheduler import run_scheduler

    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    _until_signalled(lambda stop: run_scheduler(engine, settings, stop))
