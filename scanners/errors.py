"""Errors of the scan-station client, each with ``diagnostics()`` saying what to do next.

::

    StationError
    ├── ServerUnreachable    no usable answer from the capture API: no connection, 5xx, 429
    │                        (retry later; nothing was lost)
    └── CaptureRefused       the server refused with a rule (fix the event or the setup)
        └── StationRefused   the refusal is of the station itself (key, token), not one event
"""

from __future__ import annotations


class StationError(Exception):
    """Base of the station client's errors."""

    def diagnostics(self) -> str:
        """Text for the person at the station."""
        return str(self)


class ServerUnreachable(StationError):
    """The capture API did not answer, answered with a server error (5xx), or asked to be
    asked later (429, the rate limit): either way, retrying later is right."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url

    def diagnostics(self) -> str:
        return f"{self}\nCheck the network and MEDTRACE_PUBLIC_URL; nothing sent was lost."


class CaptureRefused(StationError):
    """The server answered with a 4xx naming a rule."""

    def __init__(self, status: int, rule: str, message: str, index: int | None = None) -> None:
        where = f" (envelope {index})" if index is not None else ""
        super().__init__(f"{status} {rule}: {message}{where}")
        self.status, self.rule, self.message, self.index = status, rule, message, index

    def diagnostics(self) -> str:
        return f"Refused by the server: {self.message}\nRule: {self.rule}"


class StationRefused(CaptureRefused):
    """The server refuses this station (unknown or revoked key, bad token): every envelope
    would be refused alike, so forwarding stops and the outbox keeps them pending."""

    def diagnostics(self) -> str:
        return (
            f"The server refuses this station: {self.message}\nRule: {self.rule}\n"
            "Check the station's key registration (medtrace station register) and API token; "
            "scans stay in the outbox and are sent once this is fixed."
        )
