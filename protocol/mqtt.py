"""MQTT as medtrace speaks it (paho-mqtt 2.x): shared by the sensors, the bridge and the
server's alert topic.

Two protocol levels are supported: MQTT 5 (production brokers such as Mosquitto, EMQX, HiveMQ:
session expiry, Receive Maximum, shared subscriptions) and MQTT 3.1.1 (the demo's embedded
amqtt broker, which speaks nothing newer). Callbacks always use paho's VERSION2 signatures.
"""

from __future__ import annotations

from enum import StrEnum

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


class MqttVersion(StrEnum):
    """The protocol level to speak."""

    V5 = "5"
    V311 = "3.1.1"

    @property
    def protocol(self) -> MQTTProtocolVersion:
        """paho's constant for this level."""
        return (
            MQTTProtocolVersion.MQTTv5 if self is MqttVersion.V5 else MQTTProtocolVersion.MQTTv311
        )


def new_client(client_id: str, version: MqttVersion, *, persistent: bool) -> mqtt.Client:
    """A paho client with VERSION2 callbacks; ``persistent`` keeps a 3.1.1 session
    (``clean_session=False``; MQTT 5 sets ``clean_start`` at connect instead)."""
    if version is MqttVersion.V5:
        return mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=version.protocol,
            manual_ack=persistent,
        )
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version.protocol,
        clean_session=not persistent,
        manual_ack=persistent,
    )
