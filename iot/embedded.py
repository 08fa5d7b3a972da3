"""An MQTT broker inside the process (amqtt), so the demo needs no server of its own.

amqtt speaks MQTT 3.1.1 only: clients connect with ``MqttVersion.V311``, and the bridge uses
a plain persistent subscription (amqtt grants ``$share/...`` but delivers nothing on it).
The broker runs its own asyncio loop in a daemon thread; it must be built inside that
running loop, bound to an explicit address (its default 0.0.0.0:1883 would collide with a
Mosquitto), keep its anonymous-auth plugin (or it refuses every client), and its INFO logs
are silenced.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from amqtt.broker import Broker  # type: ignore[import-untyped]  # amqtt ships no py.typed

_QUIET_LOGGERS = ("amqtt", "transitions")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """An amqtt broker on ``host`` and a free port, in a background thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = _free_port(host)
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    async def _start(self) -> None:
        self._broker = Broker(self._config())  # inside the running loop, as amqtt requires
        await self._broker.start()

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raises whatever amqtt raised if it could not."""
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down and stop its loop."""
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()
