"""The sequencer: integrates committed leaves into the tree and signs checkpoints.

Capture never waits for it: a leaf has its index when its writer commits. Every
``batch_interval`` seconds, or as soon as ``batch_size`` leaves are waiting, the sequencer signs
a C2SP checkpoint of the whole committed prefix, after which every leaf below that size is
provable. One sequencer runs per log.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import sql
from .checkpoint import Checkpoint, sign_checkpoint
from .note import NoteSigner

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05


class Sequencer:
    """Integrates a SQL log's committed leaves and signs its checkpoints."""

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        *,
        batch_interval: float = 1.0,
        batch_size: int = 10_000,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._batch_interval = batch_interval
        self._batch_size = batch_size

    def integrate(self) -> sql.StoredCheckpoint | None:
        """Sign a checkpoint of every committed leaf; None when nothing new was committed."""
        with self._engine.begin() as conn:
            latest = sql.latest_checkpoint(conn)
            size = sql.committed_size(conn)
            if latest is not None and latest.size >= size:
                return None
            root = sql.root_at(conn, size)
            note = sign_checkpoint(Checkpoint(self._signer.name, size, root), self._signer)
            stored = sql.StoredCheckpoint(size=size, root_hash=root, note=note)
            sql.store_checkpoint(conn, stored)
        log.info("integrated the log up to size %d", size)
        return stored

    def _pending(self) -> int:
        with self._engine.connect() as conn:
            latest = sql.latest_checkpoint(conn)
            return sql.committed_size(conn) - (latest.size if latest else 0)

    def run(self, stop: threading.Event) -> None:
        """Integrate until ``stop`` is set: on each interval, or early on a full batch.

        A database error (a restart, a lost connection) is logged and retried on the next
        tick: committed leaves wait in the store, so nothing is lost while it lasts.
        """
        waited = self._batch_interval
        while not stop.is_set():
            try:
                if waited >= self._batch_interval or self._pending() >= self._batch_size:
                    self.integrate()
                    waited = 0.0
            except SQLAlchemyError:
                log.exception("integration failed; retrying")
            stop.wait(_POLL_SECONDS)
            waited += _POLL_SECONDS
