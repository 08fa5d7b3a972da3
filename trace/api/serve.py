"""Serve the API: one process, or several worker processes on one port.

Python runs one request at a time per process, so a machine serves as many requests at once
as it runs workers. The workers share one listening socket that this module binds itself:
uvicorn's own (``Config.bind_socket``) leaves the socket's protocol number at 0, asyncio then
does not set ``TCP_NODELAY`` on the accepted connections, and every keep-alive response after
the first waits about 40 ms for the client's delayed ACK (uvicorn issue #3149, open in
0.54.0).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from medtrace.config import Settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.protocol.keys import load_or_create_key
from medtrace.roles import freeze_startup_heap


def run_api(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve the API on ``host``:``port`` until stopped, with ``workers`` processes.

    The app logs each request itself (``medtrace.http``), so uvicorn's access log is off.
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from ``trusted_proxies``
    (``proxy_options``).
    """
    if workers == 1:
        from medtrace.api.main import create_app

        api = create_app(settings)
        freeze_startup_heap()
        uvicorn.run(
            api, host=host, port=port, log_config=None, access_log=False, **proxy_options(settings)
        )
        return
    # Each worker builds the app from the same settings (one leads the sequencer), on a schema
    # and a log key made here first, so that the workers do not race to make them.
    upgrade_schema(create_db_engine(settings.resolved_database_url))
    load_or_create_key(settings.resolved_log_key_path)
    config = uvicorn.Config(
        "medtrace.api.main:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **proxy_options(settings),
    )
    listener = tcp_listener(host, port)
    Multiprocess(config, sockets=[listener]).run()


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for forwarded headers: believed only from the configured proxies.

    uvicorn's default believes them from 127.0.0.1, so anyone who can reach the port locally
    (or a proxy on the same host that passes the header through) chooses the client address
    that the rate limits, the log-in throttle and the count of places that verified a pack
    rely on. With no proxy configured the client is the TCP peer."""
    trusted = settings.http.trusted_proxies
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}


def tcp_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose connections asyncio sets ``TCP_NODELAY`` on: created with
    ``IPPROTO_TCP`` (the number accepted sockets inherit), inheritable by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.set_inheritable(True)
    return listener
