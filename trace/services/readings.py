"""Sensor readings: exactly-once capture, each reading's proof, and the refused ones.

Capture takes the MQTT messages a bridge relays, untouched, and decides each one in a single
transaction: a reading that verifies (registered, active sensor; Ed25519 signature over the
RFC 8785 bytes; a sequence number not used for another reading) becomes a row and a ledger leaf
(``ledger.append_leaves``), committed together; a redelivery of a captured reading (same
sensor, sequence and bytes) is answered with its first leaf and writes nothing; everything else
is kept in the rejects table with the rule it broke. Only after that commit does the bridge
acknowledge the messages to the broker, so a crash anywhere re-delivers and nothing is lost or
doubled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from medtrace import ledger
from medtrace.db import lost_race_raises, writer_turn
from medtrace.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MedtraceError,
    NotFound,
    SignatureRejected,
)
from medtrace.key_history import check_key_usable, signing_key
from medtrace.models import Participant, Role, as_utc, utcnow
from medtrace.models.iot import ReadingReject, SensorKey
from medtrace.protocol.keys import b64
from medtrace.protocol.readings import (
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_CHARS,
    ParsedMessage,
    parse_message,
    payload_digest,
    relayed_payload,
    topic_sensor_id,
    verify_reading,
)
from medtrace.schemas.sensors import (
    ReadingMessageIn,
    ReadingPublic,
    ReadingResult,
    ReadingsResponse,
    ReadingStatus,
    RejectPublic,
)
from medtrace.store import devices as device_store
from medtrace.store import readings as reading_store

# --- capture --------------------------------------------------------------------------------


@dataclass
class _Batch:
    """What a batch has decided so far, before anything is written."""

    results: list[ReadingResult] = field(default_factory=list)
    new: dict[tuple[str, int], tuple[ParsedMessage, str, int]] = field(default_factory=dict)
    rejects: dict[str, ReadingReject] = field(default_factory=dict)


def capture_readings(
    *, session: Session, messages: Sequence[ReadingMessageIn], reject_cap: int
) -> ReadingsResponse:
    """Capture relayed MQTT messages in one transaction; see the module docstring.

    Every message gets a receipt (accepted, duplicate or rejected); a refused reading is
    stored, not raised, but only the newest ``reject_cap`` of each registered sensor are kept
    (and the newest ``reject_cap`` of all those naming no registered sensor): anyone can
    publish under any sensor id, so the oldest are dropped rather than letting them grow the
    store without bound, and the latest refusals, the ones worth investigating, stay.
    Raises ``Conflict`` when a concurrent capture of the same readings won a race (retrying
    is safe: they come back as duplicates).
    """
    if not messages:
        raise InvalidInput("send at least one message", rule="readings.empty")
    parsed = [_parse(m) for m in messages]
    with session.begin():  # a short read: the keys of the batch's sensors
        sensor_ids = {p.reading.sensor_id for p in parsed if isinstance(p, ParsedMessage)}
        sensors = device_store.get_devices(
            session=session, tables=device_store.SENSORS, device_ids=sensor_ids
        )
        history = device_store.get_keys(
            session=session, tables=device_store.SENSORS, device_ids=sensor_ids
        )
        keys = {sid: (history[sid], sensor.active) for sid, sensor in sensors.items()}
    # Signatures are checked before the write transaction, which then holds the log's write
    # lock only for the database work (SQLite has one writer; PostgreSQL orders appends).
    verified = [_verify(outcome, keys) for outcome in parsed]
    batch = _Batch()
    with (
        lost_race_raises(_conflict()),
        writer_turn(session.get_bind().engine),
        session.begin(),
    ):
        ledger.begin_append(session.connection())
        known = reading_store.known_readings(
            session=session,
            keys=[
                (v.reading.sensor_id, v.reading.seq)
                for v in verified
                if isinstance(v, ParsedMessage)
            ],
        )
        for message, outcome in zip(messages, verified, strict=True):
            _decide(batch, message, outcome, known)
        _write(session, batch, registered=keys.keys(), reject_cap=reject_cap)
    counts = {status: 0 for status in ReadingStatus}
    for result in batch.results:
        counts[result.status] += 1
    return ReadingsResponse(
        results=batch.results,
        accepted=counts[ReadingStatus.ACCEPTED],
        duplicates=counts[ReadingStatus.DUPLICATE],
        rejected=counts[ReadingStatus.REJECTED],
    )


def _conflict() -> Conflict:
    return Conflict(
        "a concurrent capture wrote the same readings; retrying is safe", rule="store.conflict"
    )


def _parse(message: ReadingMessageIn) -> ParsedMessage | MedtraceError:
    """The parsed message, or the typed error that is its verdict (never raised: one
    message's fault must not fail its batch)."""
    try:
        return parse_message(message.topic, relayed_payload(message.payload))
    except MedtraceError as exc:
        return exc


def _decide(
    batch: _Batch,
    message: ReadingMessageIn,
    outcome: ParsedMessage | MedtraceError,
    known: dict[tuple[str, int], tuple[str, int]],
) -> None:
    """Decide one verified message against the database and the batch so far."""
    try:
        if isinstance(outcome, MedtraceError):
            raise outcome
        reading = outcome.reading
        key, digest = (reading.sensor_id, reading.seq), payload_digest(outcome.leaf)
        # (digest, leaf index) of the first capture; the index of one in this batch is
        # known only once its leaf is appended (None until then).
        first: tuple[str, int | None] | None = known.get(key)
        if first is None and key in batch.new:
            first = (batch.new[key][1], None)
        if first is not None:
            if first[0] != digest:
                raise SignatureRejected(
                    f"sequence number {reading.seq} of sensor {reading.sensor_id!r} was "
                    "already used for another reading",
                    rule="reading.replayed_sequence",
                )
            batch.results.append(_receipt(ReadingStatus.DUPLICATE, outcome, first[1]))
            return
        batch.new[key] = (outcome, digest, -1)
        batch.results.append(_receipt(ReadingStatus.ACCEPTED, outcome, None))
    except MedtraceError as exc:
        _reject(batch, message, outcome, exc)


def _verify(
    outcome: ParsedMessage | MedtraceError, keys: dict[str, tuple[list[SensorKey], bool]]
) -> ParsedMessage | MedtraceError:
    """The parsed message if its sensor is registered and active and its signature holds,
    by a key that was valid for it (see ``medtrace.key_history``)."""
    if isinstance(outcome, MedtraceError):
        return outcome
    sensor_id = outcome.reading.sensor_id
    try:
        if sensor_id not in keys:
            raise SignatureRejected(
                f"sensor {sensor_id!r} is not registered", rule="reading.unknown_sensor"
            )
        history, active = keys[sensor_id]
        if not active:
            raise SignatureRejected(f"sensor {sensor_id!r} is deactivated", rule="reading.inactive")
        parsed = outcome
        key = signing_key(history, lambda public_key: verify_reading(parsed, public_key))
        check_key_usable(key, owner="sensor", name=sensor_id, signed_at=outcome.reading.taken_at)
    except MedtraceError as exc:
        return exc
    return outcome


def _receipt(status: ReadingStatus, parsed: ParsedMessage, leaf: int | None) -> ReadingResult:
    return ReadingResult(
        status=status,
        sensor_id=parsed.reading.sensor_id,
        seq=parsed.reading.seq,
        leaf_index=leaf,
        rule=None,
    )


def _storable(text: str) -> str:
    """Text as PostgreSQL can hold it: a lone surrogate (no UTF-8) becomes ``?`` and a NUL
    (which PostgreSQL text cannot hold) U+FFFD."""
    return text.encode("utf-8", "replace").decode().replace("\x00", "\ufffd")


def _reject(
    batch: _Batch,
    message: ReadingMessageIn,
    outcome: ParsedMessage | MedtraceError,
    exc: MedtraceError,
) -> None:
    parsed = outcome if isinstance(outcome, ParsedMessage) else None
    sensor_id = parsed.reading.sensor_id if parsed else topic_sensor_id(message.topic)
    seq = parsed.reading.seq if parsed else None
    payload = relayed_payload(message.payload)
    digest = payload_digest(payload)
    batch.rejects.setdefault(
        digest,
        ReadingReject(
            digest=digest,
            sensor_id=sensor_id,
            seq=seq,
            rule=exc.rule,
            message=_storable(exc.message),
            # the digest is of the bytes as received; the row keeps what a person can read
            topic=_storable(message.topic[:MAX_TOPIC_CHARS]),
            payload=_storable(payload[:MAX_PAYLOAD_BYTES].decode("utf-8", "replace")),
        ),
    )
    batch.results.append(
        ReadingResult(
            status=ReadingStatus.REJECTED,
            sensor_id=sensor_id,
            seq=seq,
            leaf_index=None,
            rule=exc.rule,
        )
    )


def _write(session: Session, batch: _Batch, *, registered: Iterable[str], reject_cap: int) -> None:
    if batch.new:
        entries = list(batch.new.values())
        first = ledger.append_leaves(session.connection(), [p.leaf for p, _, _ in entries])
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for offset, (parsed, digest, _) in enumerate(entries):
            reading = parsed.reading
            batch.new[(reading.sensor_id, reading.seq)] = (parsed, digest, first + offset)
            rows.append(
                {
                    "sensor_id": reading.sensor_id,
                    "seq": reading.seq,
                    "taken_at": reading.taken_at,
                    "temperature_c": float(reading.temperature_c),
                    "humidity_pct": None
                    if reading.humidity_pct is None
                    else float(reading.humidity_pct),
                    "digest": digest,
                    "leaf_index": first + offset,
                    "recorded_at": now,
                }
            )
        reading_store.add_readings(session=session, rows=rows)
        for result in batch.results:
            if result.status is not ReadingStatus.REJECTED and result.leaf_index is None:
                assert result.sensor_id is not None and result.seq is not None
                result.leaf_index = batch.new[(result.sensor_id, result.seq)][2]
    if batch.rejects:
        seen = reading_store.known_reject_digests(session=session, digests=batch.rejects)
        reading_store.add_rejects(
            session=session, rejects=[r for d, r in batch.rejects.items() if d not in seen]
        )
        session.flush()
        named = {r.sensor_id for r in batch.rejects.values() if r.sensor_id is not None}
        reading_store.trim_rejects(
            session=session, sensor_ids=named.intersection(registered), keep=reject_cap
        )
    session.flush()


# --- reading proofs and rejects ---------------------------------------------------------------


def get_reading(*, session: Session, sensor_id: str, seq: int) -> ReadingPublic:
    """One reading with its leaf and its inclusion proof against the latest checkpoint."""
    reading = reading_store.get_reading(session=session, sensor_id=sensor_id, seq=seq)
    if reading is None:
        raise NotFound(f"no reading {seq} of sensor {sensor_id!r}", rule="reading.unknown")
    conn = session.connection()
    checkpoint = ledger.latest_checkpoint(conn)
    size = checkpoint.size if checkpoint else 0
    proof = (
        ledger.inclusion_proof_at(conn, reading.leaf_index, size)
        if reading.leaf_index < size
        else None
    )
    leaf = ledger.leaves_at(conn, [reading.leaf_index])[reading.leaf_index]
    return ReadingPublic(
        sensor_id=reading.sensor_id,
        seq=reading.seq,
        time=as_utc(reading.taken_at),
        temperature_c=reading.temperature_c,
        humidity_pct=reading.humidity_pct,
        leaf_index=reading.leaf_index,
        leaf=b64(leaf),
        checkpoint=checkpoint.note if checkpoint and proof is not None else None,
        inclusion_proof=None if proof is None else [h.hex() for h in proof],
    )


def list_rejects(
    *, session: Session, participant: Participant, sensor_id: str | None, limit: int
) -> list[RejectPublic]:
    """The most recent refused messages, newest first: a regulator's every one, anyone else's
    only those of its own sensors (a payload may say where and when a sensor measured).
    ``Forbidden`` (``readings.rejects_not_yours``) for another participant's sensor, or one
    never registered."""
    owner_id = None if participant.role is Role.REGULATOR else participant.id
    if owner_id is not None and sensor_id is not None:
        sensor = device_store.get_device(
            session=session, tables=device_store.SENSORS, device_id=sensor_id
        )
        if sensor is None or sensor.participant_id != owner_id:
            raise Forbidden(
                f"the refused readings of {sensor_id!r} are its owner's and the regulator's",
                rule="readings.rejects_not_yours",
            )
    rows = reading_store.list_rejects(
        session=session, sensor_id=sensor_id, owner_id=owner_id, limit=limit
    )
    return [
        RejectPublic(
            sensor_id=r.sensor_id,
            seq=r.seq,
            rule=r.rule,
            message=r.message,
            topic=r.topic,
            payload=r.payload,
            received_at=as_utc(r.received_at),
        )
        for r in rows
    ]
