"""The station's sender: forwards the outbox in the background while people keep scanning.

Scanning never waits on the network: a scan is signed and on disk in the outbox first, then
the sender is asked for a pass (:meth:`Sender.request`). The scanning side may wait a moment
for that pass (:meth:`Sender.wait`) to show the server's answer, and moves on if it takes
longer. The sender owns its own outbox connection and HTTP client, so the two sides share only
the SQLite file (WAL). An unreachable server is retried with exponential backoff, and at once
on the next scan; a refusal of the station itself (unknown or revoked key, bad token) is kept
in :attr:`Sender.problem` and retried slowly, since only a person can fix it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from .client import CaptureClient
from .errors import ServerUnreachable, StationError, StationRefused
from .forward import DEFAULT_BATCH, forward
from .outbox import Outbox

_FIRST_RETRY = 0.5  # seconds after the first failure
_LONGEST_RETRY = 30.0
_STATION_RETRY = 60.0  # a refused station only changes when a person acts
_IDLE_PASS = 5.0  # even when nobody asks: scans left from an earlier run get sent


class Sender:
    """A background thread that forwards one outbox file to the capture API."""

    def __init__(
        self,
        outbox_path: Path,
        client_factory: Callable[[], CaptureClient],
        *,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self._outbox_path = outbox_path
        self._client_factory = client_factory
        self._batch_size = batch_size
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._passes = threading.Condition()
        self._requested = 0
        self._finished = 0
        self.problem: StationError | None = None
        """Why the last pass could not send everything (None when it did)."""
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

    def start(self) -> None:
        """Start forwarding in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the pass under way and stop (pending scans stay in the outbox)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    @property
    def offline(self) -> bool:
        """Whether the last pass found the server unreachable."""
        return isinstance(self.problem, ServerUnreachable)

    def request(self) -> int:
        """Ask for a pass that includes everything in the outbox now; its ticket for
        :meth:`wait`."""
        with self._passes:
            self._requested += 1
            ticket = self._requested
        self._wake.set()
        return ticket

    def wait(self, ticket: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the pass of ``ticket`` to finish (sent,
        refused or failed: read the outbox and :attr:`problem` to know which)."""
        with self._passes:
            return self._passes.wait_for(lambda: self._finished >= ticket, timeout)

    def _run(self) -> None:
        outbox = Outbox(self._outbox_path)
        delay = 0.0
        try:
            with self._client_factory() as client:
                while not self._stopping.is_set():
                    self._wake.wait(timeout=delay or _IDLE_PASS)
                    self._wake.clear()
                    with self._passes:
                        ticket = self._requested
                    problem, delay = self._pass(outbox, client, delay)
                    with self._passes:
                        self.problem = problem
                        self._finished = ticket
                        self._passes.notify_all()
        finally:
            outbox.close()

    def _pass(
        self, outbox: Outbox, client: CaptureClient, delay: float
    ) -> tuple[StationError | None, float]:
        """One forwarding pass: its problem, if any, and the delay before the next."""
        try:
            if self.offline:
                # one envelope finds out whether the server is back: reading, encoding and
                # failing to send a whole batch at every scan made a long offline spell slow
                forward(outbox, client, batch_size=1, batches=1)
            forward(outbox, client, batch_size=self._batch_size)
        except ServerUnreachable as exc:
            return exc, min(max(_FIRST_RETRY, delay * 2), _LONGEST_RETRY)
        except StationRefused as exc:
            return exc, _STATION_RETRY
        return None, 0.0
