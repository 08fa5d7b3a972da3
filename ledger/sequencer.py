"""The sequencer: integrates committed leaves into the stored tree and signs checkpoints.

Capture never waits for it: a leaf has its index when its writer commits. Every
``batch_interval`` seconds, or as soon as ``batch_size`` leaves are waiting, the sequencer
extends the stored tree with the new leaves and signs a C2SP checkpoint of it, in one
transaction, after which every leaf below that size is provable. Then it asks its witnesses
(if any) to cosign the checkpoint and stores their cosignature lines.

Exactly one sequencer per log integrates at a time: ``run`` leads only while it holds the
leader lock (``lock.py``), and a follower retries every ``_RETRY_SECONDS`` to take over. Even
without the lock, ``integrate`` cannot apply twice: the stored tree's size is moved by
compare-and-set in the same transaction as the tiles and the checkpoint.

The sequencer reads and writes the log only through the storage interface of ``sql.py`` (its
``__all__``), the same one the application's services call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import sql
from .checkpoint import Checkpoint, sign_checkpoint
from .errors import LedgerError
from .lock import LeaderLock, leader_lock
from .note import NoteSigner
from .witness import WitnessClient, WitnessRefusal

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_RETRY_SECONDS = 0.5
_MAX_LEAVES_PER_INTEGRATION = 1 << 20
"""A backlog larger than this is integrated over several checkpoints (bounded memory)."""


class Sequencer:
    """Integrates a SQL log's committed leaves and signs its checkpoints.

    ``turn`` is entered around each integration's write transaction: an application whose
    other writers queue for a database (medtrace's SQLite writers' turns) passes its own, so
    that the sequencer queues with them instead of in the database's busy handler. The log
    needs none for its correctness (the stored tree moves by compare-and-set).
    """

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        *,
        batch_interval: float = 1.0,
        batch_size: int = 10_000,
        witnesses: Sequence[WitnessClient] = (),
        lock: LeaderLock | None = None,
        turn: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._batch_interval = batch_interval
        self._batch_size = batch_size
        self._witnesses = list(witnesses)
        self._lock = lock or leader_lock(engine)
        self._turn = turn

    def integrate(self) -> sql.StoredCheckpoint | None:
        """Integrate every committed leaf and sign a checkpoint; None when nothing was new.

        Raises:
            sql.TreeMoved: if another sequencer integrated meanwhile (nothing was written).
        """
        with self._turn(), self._engine.begin() as conn:
            moved = sql.integrate(conn, limit=_MAX_LEAVES_PER_INTEGRATION)
            if moved is None:
                return None
            size = moved[1]
            root = sql.root_at(conn, size)
            note = sign_checkpoint(Checkpoint(self._signer.name, size, root), self._signer)
            stored = sql.StoredCheckpoint(size=size, root_hash=root, note=note)
            sql.store_checkpoint(conn, stored)
        log.info("integrated the log from size %d to %d", moved[0], size)
        self.collect_cosignatures(stored)
        return stored

    def collect_cosignatures(self, checkpoint: sql.StoredCheckpoint) -> int:
        """Ask every witness to cosign ``checkpoint``; store the lines; return how many came.

        A witness that refuses or cannot be reached is logged and skipped: witnessing is a
        policy over the checkpoints the log publishes, never a reason to stop integrating.
        """
        collected = 0
        for witness in self._witnesses:

            def proof_from(old: int) -> list[bytes]:
                with self._engine.connect() as conn:
                    return sql.consistency_proof_at(conn, old, checkpoint.size)

            try:
                line = witness.request_cosignature(checkpoint.note, checkpoint.size, proof_from)
            except WitnessRefusal as exc:
                log.error("witness %s refused size %d: %s", witness.url, checkpoint.size, exc)
                continue
            except LedgerError as exc:  # an answer that is not a valid signed-note line
                log.error("witness %s answered garbage: %s", witness.url, exc)
                continue
            except httpx.HTTPError as exc:
                log.warning("witness %s unreachable: %s", witness.url, exc)
                continue
            with self._engine.begin() as conn:
                sql.store_cosignature(
                    conn, checkpoint.size, witness.verifier.name, line.rstrip("\n")
                )
            collected += 1
        return collected

    def _pending(self) -> int:
        with self._engine.connect() as conn:
            return sql.committed_size(conn) - sql.integrated_size(conn)

    def run(self, stop: threading.Event) -> None:
        """Lead and integrate until ``stop`` is set: on each interval, or early on a full batch.

        While another process leads, this one waits and retries the lock. A database error (a
        restart, a lost connection) is logged and retried on the next tick: committed leaves
        wait in the store, so nothing is lost while it lasts.
        """
        leading = False
        waited = self._batch_interval
        try:
            while not stop.is_set():
                try:
                    if not leading:
                        leading = self._lock.try_acquire()
                        if not leading:
                            stop.wait(_RETRY_SECONDS)
                            continue
                        log.info("this process now sequences the log")
                    elif not self._lock.still_held():
                        leading = False
                        continue
                    if waited >= self._batch_interval or self._pending() >= self._batch_size:
                        self.integrate()
                        waited = 0.0
                except (SQLAlchemyError, sql.TreeMoved):
                    log.exception("integration failed; retrying")
                stop.wait(_POLL_SECONDS)
                waited += _POLL_SECONDS
        finally:
            self._lock.release()
