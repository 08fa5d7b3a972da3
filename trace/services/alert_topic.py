"""The MQTT alert topic: every alert published once, at QoS 1, to ``medtrace/alerts/{kind}``.

A regulator's (or any participant's) subscriber listens there beside the webhooks. Publishing
is part of the delivery pass: an alert is marked ``published_at`` only once the broker has
acknowledged it (PUBACK), so a broker that is away, or a process that dies between publishing
and marking, means the alert is published again on the next pass: at least once, never lost.
The payload is the alert as ``GET /api/v1/alerts`` shows it; restrict the topic to those who
may read alerts with the broker's access control list.
"""

from __future__ import annotations

import logging
from typing import Protocol

import paho.mqtt.client as mqtt
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from medtrace.models import utcnow
from medtrace.models.alerts import Alert
from medtrace.protocol.mqtt import MqttVersion, new_client
from medtrace.schemas.alerts import AlertPublic

log = logging.getLogger(__name__)

TOPIC_PREFIX = "medtrace/alerts"


def alert_topic(alert: AlertPublic) -> str:
    """The topic an alert is published to."""
    return f"{TOPIC_PREFIX}/{alert.kind.value}"


class PublishFailed(RuntimeError):
    """The broker did not acknowledge a message (unreachable, or too slow)."""


class Publisher(Protocol):
    """Publishes one message at QoS 1 and returns once the broker acknowledged it."""

    def publish(self, topic: str, payload: bytes) -> None: ...


class MqttPublisher:
    """A paho client (MQTT 3.1.1, which every broker speaks) publishing at QoS 1."""

    def __init__(self, host: str, port: int, *, client_id: str, timeout: float = 10.0) -> None:
        self._host, self._port, self._timeout = host, port, timeout
        self._client = new_client(client_id, MqttVersion.V311, persistent=False)
        self._started = False

    def _connect(self) -> None:
        if not self._started:
            try:
                self._client.connect(self._host, self._port, keepalive=30)
            except OSError as exc:
                raise PublishFailed(
                    f"MQTT broker {self._host}:{self._port} unreachable: {exc}"
                ) from exc
            self._client.loop_start()
            self._started = True

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1; ``PublishFailed`` unless the broker acknowledged in time."""
        self._connect()
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishFailed(f"publishing to {topic} failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(self._timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishFailed(f"publishing to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise PublishFailed(f"the broker did not acknowledge {topic} in {self._timeout} s")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False


def publish_due(*, engine: Engine, publisher: Publisher, limit: int = 100) -> int:
    """Publish the alerts not published yet, oldest first; return how many were. Stops at
    the first failure (the broker is away: the rest wait for the next pass)."""
    with Session(engine) as session:
        due = session.exec(
            select(Alert)
            .where(col(Alert.published_at).is_(None))
            .order_by(col(Alert.id))
            .limit(limit)
        ).all()
        alerts = [AlertPublic.model_validate(a, from_attributes=True) for a in due]
    published = 0
    for alert in alerts:
        try:
            publisher.publish(alert_topic(alert), alert.model_dump_json().encode())
        except PublishFailed as exc:
            log.warning("alert %s not published: %s", alert.id, exc)
            break
        with Session(engine) as session, session.begin():
            stored = session.get(Alert, alert.id)
            assert stored is not None
            stored.published_at = utcnow()
        published += 1
    return published
