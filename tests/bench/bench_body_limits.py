"""Memory of the API process while oversized bodies stream in (issue 18 item 7).

Starts a real ``medtrace serve`` (SQLite, or PostgreSQL with ``--backend postgres``) with
the demo chain enrolled, then streams (chunked, no ``Content-Length``) ``--megabytes`` MB to
``POST /api/v1/lots`` without a token and to ``POST /epcis/capture`` with the maker's token,
and prints each answer, the seconds it took, and the server's resident memory sampled
meanwhile. Every limit is counted while the body streams, before
authentication, so the peak stays near the largest limit (EPCIS: 32 MiB).

    .venv/bin/python tests/bench/bench_body_limits.py [--backend sqlite] [--megabytes 600]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_capture import _database  # type: ignore[import-not-found]

from support.chain import make_chain
from support.live import LiveServer, start_server

CHUNK = b" " * (1024 * 1024)


PART = (
    b'--x\r\nContent-Disposition: form-data; name="documents"; filename="report.pdf"\r\n'
    b"Content-Type: application/pdf\r\n\r\n"
)


def _stream(megabytes: int, first: bytes = b"") -> Iterator[bytes]:
    """``megabytes`` MiB after ``first`` (a multipart part's head: one huge document)."""
    yield first
    for _ in range(megabytes):
        yield CHUNK


def _rss_mib(server: LiveServer) -> float:
    """The server's resident memory now (``VmRSS``)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


class _RssPeak:
    """The largest resident memory of the server sampled every 20 ms while in use (the
    process's own peak, ``VmHWM``, already holds its start: a password hash of 128 MiB)."""

    def __init__(self, server: LiveServer) -> None:
        self._server, self._stop, self.peak = server, threading.Event(), 0.0
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib(self._server))

    def __enter__(self) -> _RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _send(server: LiveServer, path: str, headers: dict[str, str], body: Iterator[bytes]) -> str:
    start = time.perf_counter()
    with _RssPeak(server) as rss:
        try:
            answer = httpx.post(server.url + path, content=body, headers=headers, timeout=300)
            outcome = f"{answer.status_code} {answer.json()['detail']['rule']}"
        except httpx.TransportError as exc:  # the server answered and closed mid-upload
            outcome = f"connection closed by the server ({type(exc).__name__})"
    took = time.perf_counter() - start
    return f"{outcome}, {took:.1f} s, server RSS at most {rss.peak:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--megabytes", type=int, default=600)
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(_database(args.backend, folder))
        server = start_server(database_url=url, data_dir=folder / "api", timeout=120)
        stack.callback(server.stop)
        chain = stack.enter_context(make_chain(server))
        print(f"backend {args.backend}, {args.megabytes} MB streamed in 1 MiB chunks")
        print(f"server RSS before: {_rss_mib(server):.0f} MiB")
        lots = {"Content-Type": "multipart/form-data; boundary=x"}
        print(
            "POST /api/v1/lots, no token:     ",
            _send(server, "/api/v1/lots", lots, _stream(args.megabytes, PART)),
        )
        epcis = {
            "Content-Type": "application/ld+json",
            "Authorization": f"Bearer {chain.maker.token}",
        }
        print(
            "POST /epcis/capture, maker token:",
            _send(server, "/epcis/capture", epcis, _stream(args.megabytes)),
        )
        print(f"server RSS after: {_rss_mib(server):.0f} MiB")


if __name__ == "__main__":
    main()
