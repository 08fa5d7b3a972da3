"""A few threads for work too heavy for the event loop: password hashing.

One scrypt hash (``medtrace.services.portal_accounts``) takes 128 MiB and a second or more of
a core. Run on the event loop, a few log-ins stop every other request of the process; run in
the shared thread pool of the framework (40 threads), forty of them take 5 GiB and every
thread that plain ``def`` routes need. This pool has one thread less than the machine has
cores (``settings.web.password_hash_workers``): that bounds the memory, leaves a core to the
other requests, and the work waiting for a thread is an asyncio future, not a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class WorkerPool:
    """``workers`` threads, named ``name-N``, that ``run`` hands work to."""

    def __init__(self, *, workers: int, name: str) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, work: Callable[[], T]) -> T:
        """The result of ``work``, run in one of the pool's threads (its exception raised
        here); the caller's event loop serves other requests meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def submit(self, work: Callable[[], object]) -> None:
        """Start ``work`` in the pool without waiting for it (preparation at start)."""
        self._executor.submit(work)

    def shutdown(self) -> None:
        """Finish the work begun and stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
