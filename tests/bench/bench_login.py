"""Other routes while portal log-ins are hammered (issue 18 item 3).

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``) whose
log-in throttle is set out of reach, so that every log-in hashes (the worst case: an attacker
spread over many networks). It times ``GET /healthz`` ``--runs`` times on a quiet server,
then again while ``--attackers`` clients loop on ``POST /portal/login`` with unknown
addresses, and prints p50/p99 of both, the log-ins answered per second and the server's peak
resident memory (``VmHWM``). Each scrypt takes 128 MiB, and at most
``MEDTRACE_PASSWORD_HASH_WORKERS`` (default: one less than the cores) run at once.

    .venv/bin/python tests/bench/bench_login.py [--backend sqlite] [--attackers 4] [--runs 200]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]

from support.live import LiveServer, start_server


def _latencies(url: str, runs: int) -> list[float]:
    """Milliseconds of ``runs`` health checks over one keep-alive connection."""
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(runs):
            start = time.perf_counter()
            client.get(f"{url}/healthz").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
            time.sleep(0.01)
    return times


def _attack(url: str, stop: threading.Event, answered: list[int], n: int) -> None:
    """Log in with unknown addresses until stopped, counting the answers."""
    with httpx.Client(base_url=url, timeout=120) as client:
        form = client.get("/portal/login")
        match = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert match is not None
        i = 0
        while not stop.is_set():
            data = {"csrf": match.group(1), "email": f"x{n}.{i}@x.example", "password": "guess"}
            answer = client.post("/portal/login", data=data)
            assert answer.status_code == 401, answer.text
            answered.append(1)
            i += 1


def _peak_rss_mib(server: LiveServer) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    peak = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(peak.group(1)) / 1024 if peak else float("nan")


def _summary(name: str, times: list[float]) -> str:
    p99 = statistics.quantiles(times, n=100)[98]
    return f"{name:<32} p50 {statistics.median(times):8.1f} ms   p99 {p99:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(_database(args.backend, folder))
        env = {"MEDTRACE_LOGIN_MAX_FAILURES": "1000000"}
        env["MEDTRACE_LOGIN_MAX_NETWORK_FAILURES"] = "1000000"
        server = start_server(database_url=url, data_dir=folder / "api", env=env, timeout=120)
        stack.callback(server.stop)
        quiet = _latencies(server.url, args.runs)
        stop, answered = threading.Event(), []
        attackers = [
            threading.Thread(target=_attack, args=(server.url, stop, answered, n))
            for n in range(args.attackers)
        ]
        for thread in attackers:
            thread.start()
        time.sleep(3)  # the attack is under way
        start, before = time.perf_counter(), len(answered)
        loaded = _latencies(server.url, args.runs)
        rate = (len(answered) - before) / (time.perf_counter() - start)
        stop.set()
        for thread in attackers:
            thread.join()
        print(f"backend {args.backend}, {args.attackers} clients looping on POST /portal/login")
        print(_summary("GET /healthz, quiet", quiet))
        print(_summary("GET /healthz, under log-in load", loaded))
        print(f"log-ins answered (401)            {rate:8.2f} /s")
        print(f"server peak RSS                   {_peak_rss_mib(server):8.0f} MiB")


if __name__ == "__main__":
    main()
