"""Errors of the sensor and bridge side, each with ``diagnostics()`` saying what to do next.

::

    IotError
    ├── BrokerUnreachable     the MQTT broker refused or did not answer (start it, check host)
    ├── CaptureUnavailable    the readings API did not answer or failed (retry; nothing is lost)
    └── CaptureRejected       the readings API refused the request itself (fix token or setup)

A reading that fails verification is not an error here: the capture service stores it in the
rejects table with its reason, and the bridge acknowledges it like any durable reading.
"""

from __future__ import annotations


class IotError(Exception):
    """Base of the IoT side's errors."""

    def diagnostics(self) -> str:
        """Text for the person running the sensor or the bridge."""
        return str(self)


class BrokerUnreachable(IotError):
    """The MQTT broker could not be reached or refused the connection."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot connect to the MQTT broker at {host}:{port}: {reason}")
        self.host, self.port = host, port

    def diagnostics(self) -> str:
        return (
            f"{self}\nStart the broker (`mosquitto -d -c /etc/mosquitto/mosquitto.conf`) or "
            "set MEDTRACE_MQTT_HOST / MEDTRACE_MQTT_PORT."
        )


class CaptureUnavailable(IotError):
    """The readings API did not answer, or answered with a server error or a conflict."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the readings API at {url} is unavailable: {reason}")
        self.url = url

    def diagnostics(self) -> str:
        return (
            f"{self}\nThe bridge keeps the messages unacknowledged, so the broker redelivers "
            "them: nothing is lost. Check that `medtrace serve` runs at MEDTRACE_PUBLIC_URL."
        )


class CaptureRejected(IotError):
    """The readings API refused a request as a whole (4xx): a bad token, a bad setup."""

    def __init__(self, status: int, rule: str, message: str) -> None:
        super().__init__(f"{status} {rule}: {message}")
        self.status, self.rule, self.message = status, rule, message

    def diagnostics(self) -> str:
        return f"Refused by the server: {self.message}\nRule: {self.rule}"
