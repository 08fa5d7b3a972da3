"""Serving the API with several worker processes on one port."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from medtrace.api.serve import tcp_listener
from support.live import start_server


def test_connections_accepted_by_the_workers_listener_send_without_delay() -> None:
    """Nagle's algorithm off on every accepted connection: asyncio sets TCP_NODELAY only on
    sockets whose protocol number is TCP, which uvicorn's own listener lacks (#3149); with it
    on, each keep-alive response waited ~40 ms for the client's delayed ACK."""
    listener = tcp_listener("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
            return value

    assert asyncio.run(accepted_nodelay()) == 1


def test_two_workers_serve_the_api_on_one_port(tmp_path: Path) -> None:
    server = start_server(
        database_url=f"sqlite:///{tmp_path / 'medtrace.db'}", data_dir=tmp_path, workers=2
    )
    try:
        deadline = time.monotonic() + 30
        while server.log().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        with httpx.Client(base_url=server.url) as client:  # one keep-alive connection
            answers = [client.get("/readyz") for _ in range(20)]
        assert {a.status_code for a in answers} == {200}
        assert server.log().count("this process now sequences the log") == 1, server.log()
    finally:
        server.stop()
