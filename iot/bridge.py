"""The bridge: MQTT readings in, durable readings out, each message exactly once.

The bridge subscribes at QoS 1 with a persistent session (MQTT 5: ``clean_start=False`` and a
Session Expiry Interval; MQTT 3.1.1: ``clean_session=False``). Several bridges split the load
through an MQTT 5 shared subscription (``$share/medtrace/medtrace/sensors/+/readings``, with
``share_group="medtrace"``). One bridge uses a plain subscription by default, because
Mosquitto 2.0.11 restores a persistent session after a restart but not its ``$share``
subscription: readings published between the broker's restart and the first bridge's
re-subscription reach no one and are dropped (measured; a plain subscription loses none).

It relays messages untouched (``payloads.relayed``: cut just past the size limit), in batches,
to ``POST /api/v1/readings``, where the capture service judges each one on its own and commits
readings, ledger leaves and rejects in one transaction: no message, however malformed, fails
its batch or stops the bridge. Only after that 2xx does the bridge acknowledge the batch's
messages (paho's manual acks), so a crash of the bridge, the API or the broker re-delivers
whatever was not acknowledged, and the (sensor, sequence) key turns the re-delivery into a
duplicate receipt instead of a second row: exactly once, end to end.

Acknowledgements are only ever sent on the connection that received the message (packet ids
are per connection); a message received before a reconnect is re-delivered by the broker and
answered as a duplicate. MQTT 5's Receive Maximum tells the broker how many unacknowledged
messages it may send at once; it must exceed the batch size, or the broker would stop
sending before a batch fills (Mosquitto's default for 3.1.1 clients is 20).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
)

from medtrace.protocol.mqtt import MqttVersion, new_client
from medtrace.protocol.readings import TOPIC_FILTER

from .client import ReadingsClient
from .errors import BrokerUnreachable, CaptureRejected, CaptureUnavailable

logger = logging.getLogger(__name__)

SHARE_GROUP = "medtrace"
# Refusals of a request for what it carries (its messages, its size), not for who sent it.
_CONTENT_REFUSALS = frozenset({413, 422})


@dataclass(frozen=True)
class BridgeConfig:
    """How a bridge connects and batches."""

    host: str
    port: int
    client_id: str
    version: MqttVersion = MqttVersion.V5
    batch_size: int = 500
    batch_wait: float = 0.1  # seconds a batch may wait to fill
    session_expiry: int = 24 * 3600  # seconds the broker keeps the session while we are away
    receive_maximum: int = 2000
    # MQTT 5 only (amqtt, 3.1.1, grants $share but delivers nothing); None: a plain
    # subscription. Bridges sharing a group split the messages between them.
    share_group: str | None = None

    @property
    def topic(self) -> str:
        """The subscription: shared on MQTT 5 when a group is set, plain otherwise."""
        if self.share_group and self.version is MqttVersion.V5:
            return f"$share/{self.share_group}/{TOPIC_FILTER}"
        return TOPIC_FILTER


@dataclass
class BridgeStats:
    """What the bridge did so far."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    last_leaf: int = -1  # the highest ledger leaf written for a reading relayed so far


class _Received(NamedTuple):
    """What the bridge keeps of a message until its batch is acknowledged: the connection
    it came on, its packet id and QoS to acknowledge it there, and what to relay.

    Not paho's ``MQTTMessage``: each one holds a lock, a condition and, on MQTT 5, a
    ``Properties`` object of some sixty containers, and a batch keeps up to Receive Maximum
    of them alive, so the garbage collector walked them over and over. Measured at 3 000
    messages/s, keeping the messages cost the bridge 1.5 times the CPU of keeping these tuples
    (124 to 141 µs per message against 82).
    """

    epoch: int
    mid: int
    qos: int
    topic: str
    payload: bytes


class Bridge:
    """One bridge process's worth of work; see the module docstring."""

    def __init__(self, config: BridgeConfig, api: ReadingsClient) -> None:
        self.config = config
        self.stats = BridgeStats()
        self._api = api
        self._inbox: queue.Queue[_Received] = queue.Queue()
        # Bumped when a connection ends and when one starts, under the lock that acks hold:
        # a packet id is valid only on its own connection, and a PUBACK with a stale id would
        # acknowledge another message on the next one.
        self._epoch = 0
        self._epoch_lock = threading.Lock()
        # Set once the broker granted the subscription: before that, what sensors publish
        # reaches no subscriber and is dropped, so the bridge must not report itself ready.
        self._subscribed = threading.Event()
        self._client = new_client(config.client_id, config.version, persistent=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # --- MQTT callbacks (paho's network thread) --------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.error("the broker refused the bridge: %s", reason)
            return
        with self._epoch_lock:
            self._epoch += 1
        if self.config.version is MqttVersion.V5:
            # A retained message is sent once, when the subscription is new, not again on
            # every reconnection of the persistent session (where it would come back as a
            # duplicate or a known reject each time).
            new_only = SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
            )
            client.subscribe(self.config.topic, options=new_only)
        else:
            client.subscribe(self.config.topic, qos=1)
        logger.info("connected to %s:%s, subscribing to %s", *self._address, self.config.topic)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            logger.error("the broker refused %s: %s", self.config.topic, reasons)
            return
        self._subscribed.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._subscribed.clear()
        with self._epoch_lock:
            self._epoch += 1
        if reason.is_failure:
            logger.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # no UTF-8 (MQTT forbids it): the API refuses the topic
            topic = ""
        self._inbox.put(_Received(self._epoch, msg.mid, msg.qos, topic, bytes(msg.payload)))

    @property
    def _address(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    # --- the bridge's own thread -----------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (persistent session), start paho's network thread and return once the
        broker granted the subscription (what is published before reaches no one).

        Raises ``BrokerUnreachable`` when the first subscription fails within ``timeout``;
        later disconnections are retried for ever.
        """
        properties = None
        if self.config.version is MqttVersion.V5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.config.session_expiry
            properties.ReceiveMaximum = self.config.receive_maximum
        try:
            if self.config.version is MqttVersion.V5:
                self._client.connect(
                    *self._address, keepalive=30, clean_start=False, properties=properties
                )
            else:
                self._client.connect(*self._address, keepalive=30)
        except OSError as exc:
            raise BrokerUnreachable(*self._address, str(exc)) from exc
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self._client.loop_stop()
            raise BrokerUnreachable(*self._address, f"not subscribed within {timeout} s")

    def run(self, stop: threading.Event) -> None:
        """Relay batches until ``stop`` is set, then disconnect (unacknowledged messages stay
        with the broker for the next run)."""
        try:
            while not stop.is_set():
                batch = self._collect(stop)
                if batch:
                    self._relay(batch, stop)
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _collect(self, stop: threading.Event) -> list[_Received]:
        """Wait for a first message, then up to ``batch_wait`` for the batch to fill."""
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.config.batch_wait
        while len(batch) < self.config.batch_size and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _relay(self, batch: list[_Received], stop: threading.Event) -> None:
        """Post a batch until the API has made it durable, then acknowledge it.

        The API judges each message on its own (a malformed one comes back as a reject with
        its rule), so a refusal of the whole request names no message: when it is about the
        request's content (422, 413: a server configured for smaller batches or bodies), the
        batch is halved until each part is taken, and a single message still refused is
        that message's verdict, logged and acknowledged, so no message can stop the bridge
        or come back for ever. Only an outage (``CaptureUnavailable``) is retried.

        Raises ``CaptureRejected`` when the API refuses the bridge itself (a bad token):
        nothing is acknowledged, so nothing is lost.
        """
        try:
            answer = self._post_until_durable(batch, stop)
        except CaptureRejected as exc:
            if exc.status not in _CONTENT_REFUSALS:
                raise
            self._isolate(batch, exc, stop)
            return
        if answer is not None:  # None: stopping; the broker re-delivers it to the next run
            self._ack(batch)
            self._count(answer)

    def _isolate(self, batch: list[_Received], exc: CaptureRejected, stop: threading.Event) -> None:
        """Relay the halves of a batch refused for its content; a message refused alone is
        acknowledged with the refusal as its verdict."""
        if len(batch) == 1:
            self._ack(batch)
            self.stats.rejected += 1
            logger.error("the API refused a message on %s: %s", batch[0].topic[:100], exc)
            return
        logger.warning("the API refused a batch of %d (%s); halving it", len(batch), exc)
        middle = len(batch) // 2
        self._relay(batch[:middle], stop)
        self._relay(batch[middle:], stop)

    def _post_until_durable(
        self, batch: list[_Received], stop: threading.Event
    ) -> dict[str, Any] | None:
        """The API's answer once the batch is durable, retrying outages; None if ``stop``
        was set meanwhile."""
        retrying = Retrying(
            retry=retry_if_exception_type(CaptureUnavailable),
            wait=wait_exponential(multiplier=0.1, max=5),
            stop=stop_when_event_set(stop),
            before_sleep=before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )
        try:
            answer: dict[str, Any] = retrying(
                self._api.relay, [(m.topic, m.payload) for m in batch]
            )
        except CaptureUnavailable:
            if stop.is_set():
                return None
            raise
        return answer

    def _ack(self, batch: list[_Received]) -> None:
        """Acknowledge a batch the API has decided, on the connection it came on."""
        with self._epoch_lock:
            for message in batch:
                if message.epoch == self._epoch:
                    self._client.ack(message.mid, message.qos)
        self.stats.received += len(batch)
        self.stats.batches += 1

    def _count(self, answer: dict[str, Any]) -> None:
        """Count the API's receipts for a batch and log its rejects."""
        self.stats.accepted += answer["accepted"]
        self.stats.duplicates += answer["duplicates"]
        self.stats.rejected += answer["rejected"]
        for result in answer["results"]:
            self.stats.last_leaf = max(self.stats.last_leaf, result["leaf_index"] or -1)
            if result["status"] == "rejected":
                logger.warning(
                    "rejected a reading of %s (seq %s): %s",
                    result["sensor_id"],
                    result["seq"],
                    result["rule"],
                )
