"""The password pool (issue 18 item 3): work runs off the event loop, at most ``workers`` at
once, and the loop serves other work meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time

from medtrace.api.workers import WorkerPool


def test_work_runs_in_the_pools_threads_at_most_workers_at_once() -> None:
    pool = WorkerPool(workers=2, name="password")
    lock, running, peak = threading.Lock(), [0], [0]

    def hash_like() -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    async def main() -> tuple[list[str], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        beat = asyncio.create_task(ticker())
        names = await asyncio.gather(*(pool.run(hash_like) for _ in range(8)))
        beat.cancel()
        return list(names), ticks

    names, ticks = asyncio.run(main())
    pool.shutdown()

    assert all(name.startswith("password") for name in names)
    assert threading.main_thread().name not in names, "never on the event loop's thread"
    assert peak[0] == 2, "bounded: two at once, never eight"
    assert ticks > 10, "the loop kept serving while the work ran"
