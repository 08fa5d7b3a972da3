"""Sensor readings: registration, exactly-once capture, bindings and temperature histories.

Capture takes the MQTT messages a bridge relays, untouched, and decides each one in a single
transaction: a reading that verifies (registered, active sensor; Ed25519 signature over the
RFC 8785 bytes; a sequence number not used for another reading) becomes a row and a ledger leaf
(``ledger.sql.append_leaves``), committed together; a redelivery of a captured reading (same
sensor, sequence and bytes) is answered with its first leaf and writes nothing; everything else
is kept in the rejects table with the rule it broke. Only after that commit does the bridge
acknowledge the messages to the broker, so a crash anywhere re-delivers and nothing is lost or
doubled.

A unit's temperature history follows its custody events: between two events it was at a place
(the GLN of a commission or a receipt) or in transit (after a ship). The readings of the
sensors bound to that place or shipment for that time form the series; the stretches no
binding covers, and silences longer than ``max_gap`` inside a binding, are the gaps.

Only authorised bindings count, judged when the history is read (so bindings stored before
this rule, or whose grant was revoked since, are judged like new ones). A binding counts for
a stay from the latest of its ``valid_from``, its sensor's registration and its own creation
less ``binding_backdate`` (the replay window), and then only while its sensor's owner is the
one that held the unit there (the participant whose event put it at that place; for a
shipment, its source or destination) or holds a grant from that participant for that place or
shipment, from the grant until its revocation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from biip import ParseError
from biip.sscc import Sscc
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from medtrace import key_history, ledger
from medtrace.db import writer_turn
from medtrace.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MedtraceError,
    NotFound,
    SignatureRejected,
)
from medtrace.key_history import check_key_usable, key_public, signing_key
from medtrace.models import Event, EventType, Participant, Role, as_utc, utcnow
from medtrace.models.iot import (
    BindingKind,
    ReadingReject,
    Sensor,
    SensorBinding,
    SensorGrant,
    SensorKey,
)
from medtrace.models.lots import Product
from medtrace.protocol.identifiers import parse_gln
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
from medtrace.schemas.keys import KeyCreate, KeyRevoke, decode_new_public_key, decode_public_key
from medtrace.schemas.sensors import (
    BindingCreate,
    BindingPublic,
    GrantCreate,
    GrantPublic,
    ReadingMessageIn,
    ReadingPublic,
    ReadingResult,
    ReadingsResponse,
    ReadingStatus,
    RejectPublic,
    SensorCreate,
    SensorPublic,
    TemperatureBand,
    TemperatureGap,
    TemperaturePoint,
    TemperaturePublic,
)
from medtrace.store import events as event_store
from medtrace.store import participants as participant_store
from medtrace.store import readings as reading_store
from medtrace.store.readings import BoundBy, GrantRow

# PostgreSQL SQLSTATEs that mean "another transaction won; retry".
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_FINAL_EVENT_TYPES = frozenset(
    {EventType.DISPENSE, EventType.DESTROY, EventType.EXPORT, EventType.DECOMMISSION}
)
_Span = tuple[dt.datetime, dt.datetime]
#: How far ahead of the server's clock a binding may start (a logger's clock runs ahead).
CLOCK_SKEW = dt.timedelta(minutes=5)


# --- sensors --------------------------------------------------------------------------------


def sensor_public(
    sensor: Sensor, participant: Participant, keys: Sequence[SensorKey]
) -> SensorPublic:
    """The public view of a sensor, with its key history (newest first)."""
    return SensorPublic(
        sensor_id=sensor.sensor_id,
        participant=participant.gln,
        public_key=b64(sensor.public_key),
        active=sensor.active,
        keys=[key_public(key) for key in keys],
    )


def register_sensor(
    *, session: Session, participant: Participant, sensor_in: SensorCreate
) -> SensorPublic:
    """Register a sensor's Ed25519 public key for the authenticated participant."""
    public_key = decode_new_public_key(sensor_in.public_key)
    assert participant.id is not None
    try:
        with session.begin():
            sensor = reading_store.add_sensor(
                session=session,
                sensor=Sensor(
                    sensor_id=sensor_in.sensor_id,
                    participant_id=participant.id,
                    public_key=public_key,
                ),
            )
            keys = _keys_of(session, sensor.sensor_id)
    except IntegrityError as exc:
        raise Conflict(
            f"sensor {sensor_in.sensor_id!r} is already registered", rule="sensor.exists"
        ) from exc
    return sensor_public(sensor, participant, keys)


def _sensor_or_404(session: Session, sensor_id: str) -> Sensor:
    sensor = reading_store.get_sensor(session=session, sensor_id=sensor_id)
    if sensor is None:
        raise NotFound(f"no sensor {sensor_id!r}", rule="sensor.unknown")
    return sensor


def _own_sensor(session: Session, participant: Participant, sensor_id: str) -> Sensor:
    sensor = _sensor_or_404(session, sensor_id)
    if sensor.participant_id != participant.id:
        raise SignatureRejected(
            f"sensor {sensor_id!r} belongs to another participant", rule="sensor.not_yours"
        )
    return sensor


def _keys_of(session: Session, sensor_id: str) -> list[SensorKey]:
    return reading_store.get_sensor_keys(session=session, sensor_ids=[sensor_id])[sensor_id]


def get_sensor(*, session: Session, sensor_id: str) -> SensorPublic:
    """A sensor's public view; ``NotFound`` if it was never registered."""
    sensor = _sensor_or_404(session, sensor_id)
    participant = participant_store.get_participant(
        session=session, participant_id=sensor.participant_id
    )
    assert participant is not None
    return sensor_public(sensor, participant, _keys_of(session, sensor_id))


def rotate_sensor_key(
    *, session: Session, participant: Participant, sensor_id: str, key_in: KeyCreate
) -> SensorPublic:
    """Give the caller's sensor a new key; the old one still signs readings taken before
    now (a logger's memory may hold them), and no later ones."""
    public_key = decode_new_public_key(key_in.public_key)
    with session.begin():
        sensor = _own_sensor(session, participant, sensor_id)
        now = utcnow()
        key_history.retire_for(_keys_of(session, sensor_id), public_key, now=now)
        reading_store.add_sensor_key(
            session=session,
            key=SensorKey(sensor_id=sensor_id, public_key=public_key, valid_from=now),
        )
        sensor.public_key = public_key
        session.add(sensor)
        keys = _keys_of(session, sensor_id)
    return sensor_public(sensor, participant, keys)


def revoke_sensor_keys(
    *, session: Session, participant: Participant, sensor_id: str, revoke: KeyRevoke
) -> SensorPublic:
    """Revoke one key of the caller's sensor (or every key): readings it signs are rejected
    from now on, whatever time they claim."""
    wanted = decode_public_key(revoke.public_key) if revoke.public_key is not None else None
    with session.begin():
        sensor = _own_sensor(session, participant, sensor_id)
        keys = _keys_of(session, sensor_id)
        session.add_all(key_history.revoke(keys, wanted, now=utcnow()))
        session.flush()
    return sensor_public(sensor, participant, keys)


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
        sensors = reading_store.get_sensors(session=session, sensor_ids=sensor_ids)
        history = reading_store.get_sensor_keys(session=session, sensor_ids=sensor_ids)
        keys = {sid: (history[sid], sensor.active) for sid, sensor in sensors.items()}
    # Signatures are checked before the write transaction, which then holds the log's write
    # lock only for the database work (SQLite has one writer; PostgreSQL orders appends).
    verified = [_verify(outcome, keys) for outcome in parsed]
    batch = _Batch()
    try:
        with writer_turn(session.get_bind().engine), session.begin():
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
    except IntegrityError as exc:
        raise _conflict() from exc
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            raise _conflict() from exc
        raise
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
        sensor = reading_store.get_sensor(session=session, sensor_id=sensor_id)
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


# --- bindings -------------------------------------------------------------------------------


def _binding_public(binding: SensorBinding) -> BindingPublic:
    assert binding.id is not None
    return BindingPublic(
        id=binding.id,
        sensor_id=binding.sensor_id,
        kind=binding.kind,
        target=binding.target,
        valid_from=as_utc(binding.valid_from),
        valid_to=None if binding.valid_to is None else as_utc(binding.valid_to),
    )


def _binding_target(kind: BindingKind, target: str) -> str:
    if kind is BindingKind.PLACE:
        return parse_gln(target)
    try:
        return Sscc.parse(target).value
    except ParseError as exc:
        raise InvalidInput(f"SSCC {target!r}: {exc}", rule="gs1.sscc_format") from exc


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    """``moment`` in UTC; a naive time, or one whose offset moves it out of the years a
    datetime holds (year 1 at +05:00), is refused."""
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone (e.g. Z)", rule="binding.naive_time")
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise InvalidInput(
            f"{name} {moment.isoformat()} is out of range", rule="binding.time_out_of_range"
        ) from exc


def _check_start(
    sensor: Sensor, start: dt.datetime, now: dt.datetime, backdate: dt.timedelta
) -> None:
    """A binding starts no earlier than its sensor's registration (it measured nothing for
    anyone before), nor than ``backdate`` ago (the replay window: readings older than that
    could have been collected anywhere), nor ahead of the clock by more than ``CLOCK_SKEW``."""
    if start < as_utc(sensor.created_at):
        raise InvalidInput(
            f"valid_from {start.isoformat()} precedes the registration of sensor "
            f"{sensor.sensor_id!r} ({as_utc(sensor.created_at).isoformat()})",
            rule="binding.before_registration",
        )
    if start < now - backdate:
        raise InvalidInput(
            f"valid_from may be at most {backdate} in the past", rule="binding.too_old"
        )
    if start > now + CLOCK_SKEW:
        raise InvalidInput("valid_from is in the future", rule="binding.in_future")


def _holds(session: Session, participant: Participant, kind: BindingKind, target: str) -> bool:
    """Whether ``participant`` holds the place (its GLN, or a place inside its site its own
    store events named) or is a party to the shipment: it allocated the SSCC (its GS1 company
    prefix follows the extension digit: a logger goes on a pallet before it leaves), shipped
    it, is its destination or holds it. medtrace records no carrier, so a carrier's logger
    needs a grant."""
    if kind is BindingKind.PLACE:
        return target == participant.gln or reading_store.stores_at(
            session=session, gln=participant.gln, location=target
        )
    prefix = participant.company_prefix
    return bool(prefix and target[1:].startswith(prefix)) or participant.gln in (
        reading_store.shipment_parties(session=session, sscc=target)
    )


def may_bind(session: Session, participant: Participant, kind: BindingKind, target: str) -> bool:
    """Whether ``participant``'s sensors may be bound to the target now: it holds it
    (``_holds``) or holds a grant not revoked from who does."""
    assert participant.id is not None
    return _holds(session, participant, kind, target) or reading_store.has_active_grant(
        session=session, grantee_id=participant.id, kind=kind, target=target
    )


def _check_may_bind(
    session: Session, participant: Participant, kind: BindingKind, target: str
) -> None:
    if may_bind(session, participant, kind, target):
        return
    raise Forbidden(
        f"{participant.gln} neither holds {kind} {target} nor has its holder's grant",
        rule="sensor.binding_not_authorised",
    )


def bind_sensor(
    *,
    session: Session,
    participant: Participant,
    sensor_id: str,
    binding_in: BindingCreate,
    backdate: dt.timedelta,
) -> BindingPublic:
    """Bind one of the participant's sensors to a place or shipment from ``valid_from``.

    The participant must hold the place or be a party to the shipment, or have a grant from
    who does (``Forbidden``, ``sensor.binding_not_authorised``); ``valid_from`` is checked by
    ``_check_start``. A sensor measures in one place at a time: a binding still open when a
    later one starts is closed at that start.
    """
    target = _binding_target(binding_in.kind, binding_in.target)
    start = _aware(binding_in.valid_from, "valid_from")
    end = None if binding_in.valid_to is None else _aware(binding_in.valid_to, "valid_to")
    if end is not None and end <= start:
        raise InvalidInput("valid_to must be after valid_from", rule="binding.empty_range")
    with session.begin():
        sensor = _own_sensor(session, participant, sensor_id)
        _check_start(sensor, start, utcnow(), backdate)
        _check_may_bind(session, participant, binding_in.kind, target)
        for previous in reading_store.open_bindings(session=session, sensor_id=sensor_id):
            if as_utc(previous.valid_from) < start:
                previous.valid_to = start
        binding = reading_store.add_binding(
            session=session,
            binding=SensorBinding(
                sensor_id=sensor_id,
                kind=binding_in.kind,
                target=target,
                valid_from=start,
                valid_to=end,
            ),
        )
        public = _binding_public(binding)
    return public


# --- grants ---------------------------------------------------------------------------------


def _grant_public(grant: SensorGrant, grantor_gln: str, grantee_gln: str) -> GrantPublic:
    assert grant.id is not None
    return GrantPublic(
        id=grant.id,
        grantor=grantor_gln,
        grantee=grantee_gln,
        kind=grant.kind,
        target=grant.target,
        granted_at=as_utc(grant.granted_at),
        revoked_at=None if grant.revoked_at is None else as_utc(grant.revoked_at),
    )


def grant_binding(
    *, session: Session, participant: Participant, grant_in: GrantCreate
) -> GrantPublic:
    """Let ``grant_in.grantee``'s sensors measure at a place or with a shipment the caller
    holds, from now until revoked. ``Forbidden`` (``sensor.grant_not_authorised``) if the
    caller does not hold it, ``NotFound`` for an unknown grantee, ``InvalidInput`` for
    oneself."""
    target = _binding_target(grant_in.kind, grant_in.target)
    grantee_gln = parse_gln(grant_in.grantee)
    if grantee_gln == participant.gln:
        raise InvalidInput("your own sensors need no grant", rule="grant.self")
    assert participant.id is not None
    with session.begin():
        grantee = participant_store.get_participant_by_gln(session=session, gln=grantee_gln)
        if grantee is None or grantee.id is None:
            raise NotFound(f"no participant with GLN {grantee_gln}", rule="participant.unknown")
        if not _holds(session, participant, grant_in.kind, target):
            raise Forbidden(
                f"{participant.gln} does not hold {grant_in.kind} {target}: only who does "
                "may grant it",
                rule="sensor.grant_not_authorised",
            )
        grant = reading_store.add_grant(
            session=session,
            grant=SensorGrant(
                grantor_id=participant.id,
                grantee_id=grantee.id,
                kind=grant_in.kind,
                target=target,
            ),
        )
        public = _grant_public(grant, participant.gln, grantee_gln)
    return public


def revoke_grant(*, session: Session, participant: Participant, grant_id: int) -> GrantPublic:
    """Revoke a grant the caller gave: its grantee's readings stop counting from now (those
    before still count). Revoking a revoked grant changes nothing. ``NotFound``
    (``grant.unknown``), ``Forbidden`` (``grant.not_yours``) for someone else's."""
    with session.begin():
        grant = reading_store.get_grant(session=session, grant_id=grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}", rule="grant.unknown")
        if grant.grantor_id != participant.id:
            raise Forbidden(f"grant {grant_id} is not yours to revoke", rule="grant.not_yours")
        if grant.revoked_at is None:
            grant.revoked_at = utcnow()
            session.add(grant)
            session.flush()
        grantee = participant_store.get_participant(
            session=session, participant_id=grant.grantee_id
        )
        assert grantee is not None
        public = _grant_public(grant, participant.gln, grantee.gln)
    return public


def list_grants(*, session: Session, participant: Participant) -> list[GrantPublic]:
    """The grants the caller gave or received, oldest first (a regulator's: every grant)."""
    owner_id = None if participant.role is Role.REGULATOR else participant.id
    rows = reading_store.list_grants(session=session, participant_id=owner_id)
    return [_grant_public(*row) for row in rows]


def list_bindings(*, session: Session, sensor_id: str) -> list[BindingPublic]:
    """A sensor's bindings, oldest first."""
    _sensor_or_404(session, sensor_id)
    return [
        _binding_public(b)
        for b in reading_store.sensor_bindings(session=session, sensor_id=sensor_id)
    ]


# --- temperature history --------------------------------------------------------------------


@dataclass(frozen=True)
class TemperaturePolicy:
    """How a history is judged: the allowed band, the silence that counts as a gap, and how
    far before its creation a binding may count (the replay window, as when binding)."""

    band: TemperatureBand
    max_gap: dt.timedelta
    binding_backdate: dt.timedelta


@dataclass(frozen=True)
class _Stay:
    """Where a unit was between two of its events."""

    kind: BindingKind
    target: str | None  # a GLN or an SSCC; None in transit without an SSCC
    start: dt.datetime
    end: dt.datetime
    parties: frozenset[str]  # who held it there: the site, or a shipment's two ends

    @property
    def where(self) -> str:
        return self.target or "in transit"


def _stays(events: Sequence[Event], now: dt.datetime) -> list[_Stay]:
    """A unit's stays from its custody events (its case's and pallet's included): in transit
    after a ship (with the SSCC of the case or pallet shipped, if any), at the event's place
    after any other event, nowhere after a final one (dispense, destroy, export,
    decommission)."""
    ordered = sorted(events, key=lambda e: (as_utc(e.event_time), e.leaf_index))
    stays = []
    for index, event in enumerate(ordered):
        if event.type in _FINAL_EVENT_TYPES:
            break
        start = as_utc(event.event_time)
        end = as_utc(ordered[index + 1].event_time) if index + 1 < len(ordered) else now
        if end <= start:
            continue
        if event.type == EventType.SHIP:
            # a case or pallet shipped names its SSCC; a unit shipped loose names none
            ends = frozenset(g for g in (event.gln, event.destination_gln) if g is not None)
            stays.append(_Stay(BindingKind.SHIPMENT, event.sscc, start, end, ends))
        else:  # where it is kept: the fridge or room of a store event, else the site
            place = event.biz_location or event.gln
            stays.append(_Stay(BindingKind.PLACE, place, start, end, frozenset({event.gln})))
    return stays


def _merge(
    intervals: list[tuple[dt.datetime, dt.datetime]],
) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _authorised(
    bound: BoundBy, stay: _Stay, grants: Sequence[GrantRow], backdate: dt.timedelta
) -> list[_Span]:
    """When ``bound``'s readings count for ``stay`` (see the module docstring)."""
    binding = bound.binding
    start = max(
        stay.start,
        as_utc(binding.valid_from),
        as_utc(bound.registered_at),
        as_utc(binding.created_at) - backdate,
    )
    end = min(stay.end, as_utc(binding.valid_to) if binding.valid_to else stay.end)
    if bound.owner_gln in stay.parties:
        spans = [(start, end)]
    else:
        spans = [
            (max(start, as_utc(g.grant.granted_at)), min(end, _until(g.grant.revoked_at, end)))
            for g in grants
            if g.grantee_gln == bound.owner_gln and g.grantor_gln in stay.parties
        ]
    return [(s, e) for s, e in _merge(spans) if s < e]


def _until(moment: dt.datetime | None, default: dt.datetime) -> dt.datetime:
    return default if moment is None else as_utc(moment)


def _stay_history(
    session: Session, stay: _Stay, covering: Sequence[tuple[str, _Span]], max_gap: dt.timedelta
) -> tuple[list[TemperaturePoint], list[TemperatureGap]]:
    """The readings and the gaps of one stay, from the (sensor, authorised span) pairs that
    cover its place or shipment."""
    if stay.target is None:
        gap = TemperatureGap(
            start=stay.start, end=stay.end, where=stay.where, reason="no sensor travelled with it"
        )
        return [], [gap]
    covered: list[_Span] = []
    points: list[TemperaturePoint] = []
    for sensor_id, (start, end) in covering:
        covered.append((start, end))
        points.extend(
            TemperaturePoint(
                time=as_utc(r.taken_at),
                celsius=r.temperature_c,
                sensor_id=r.sensor_id,
                seq=r.seq,
                leaf_index=r.leaf_index,
                where=stay.target,
            )
            for r in reading_store.readings_between(
                session=session, sensor_id=sensor_id, start=start, end=end
            )
        )
    points.sort(key=lambda p: (p.time, p.sensor_id, p.seq))
    gaps: list[TemperatureGap] = []
    cursor = stay.start
    for start, end in [*_merge(covered), (stay.end, stay.end)]:
        if start > cursor:
            reason = f"no sensor bound to {stay.where}"
            gaps.append(TemperatureGap(start=cursor, end=start, where=stay.where, reason=reason))
        times = [p.time for p in points if start <= p.time < end]
        for before, after in zip([start, *times], [*times, end], strict=True):
            if after - before > max_gap:
                reason = "the sensors bound there sent no readings"
                gaps.append(
                    TemperatureGap(start=before, end=after, where=stay.where, reason=reason)
                )
        cursor = max(cursor, end)
    return points, gaps


def _coverage(
    session: Session, stays: Sequence[_Stay], backdate: dt.timedelta
) -> list[list[tuple[str, _Span]]]:
    """For each stay, the sensors whose readings count there and when (authorised bindings
    only): two queries for the whole history, grants only when a binding needs one."""
    targets = [(s.kind, s.target) for s in stays if s.target is not None]
    bindings = reading_store.bindings_overlapping(
        session=session,
        targets=targets,
        start=min((s.start for s in stays), default=dt.datetime.min.replace(tzinfo=dt.UTC)),
        end=max((s.end for s in stays), default=dt.datetime.min.replace(tzinfo=dt.UTC)),
    )
    needing = {
        (s.kind, s.target)
        for s in stays
        if s.target is not None
        and any(b.owner_gln not in s.parties for b in bindings.get((s.kind, s.target), []))
    }
    grants = reading_store.grants_for(session=session, targets=needing)
    coverage: list[list[tuple[str, _Span]]] = []
    for stay in stays:
        key = (stay.kind, stay.target or "")
        coverage.append(
            [
                (bound.binding.sensor_id, span)
                for bound in bindings.get(key, [])
                for span in _authorised(bound, stay, grants.get(key, []), backdate)
            ]
        )
    return coverage


def unit_temperature(
    *,
    session: Session,
    events: Sequence[Event],
    policy: TemperaturePolicy,
    now: dt.datetime | None = None,
) -> TemperaturePublic:
    """A unit's temperature history from its custody events (see the module docstring)."""
    series: list[TemperaturePoint] = []
    gaps: list[TemperatureGap] = []
    stays = _stays(events, now or utcnow())
    coverage = _coverage(session, stays, policy.binding_backdate)
    for stay, covering in zip(stays, coverage, strict=True):
        points, stay_gaps = _stay_history(session, stay, covering, policy.max_gap)
        series.extend(points)
        gaps.extend(stay_gaps)
    band = policy.band
    values = [p.celsius for p in series]
    return TemperaturePublic(
        band=band,
        series=series,
        gaps=gaps,
        out_of_band=sum(1 for v in values if not band.min_c <= v <= band.max_c),
        lowest_c=min(values, default=None),
        highest_c=max(values, default=None),
    )


def policy_for_product(
    *, session: Session, gtin: str, default: TemperaturePolicy
) -> TemperaturePolicy:
    """The product's own storage band where its lot records gave one, else ``default``."""
    product = session.get(Product, gtin)
    if product is None or product.storage_low_c is None or product.storage_high_c is None:
        return default
    band = TemperatureBand(
        min_c=product.storage_low_c,
        max_c=product.storage_high_c,
        source=f"storage profile of {product.name_en} (its lot record)",
    )
    return replace(default, band=band)


def get_unit_temperature(
    *, session: Session, gtin: str, serial: str, policy: TemperaturePolicy
) -> TemperaturePublic:
    """The temperature history of one unit, judged against its product's band where known
    (``policy`` otherwise); ``NotFound`` if it was never commissioned."""
    events = event_store.get_unit_events(session=session, gtin=gtin, serial=serial)
    if not events:
        raise NotFound(f"serial {serial} of GTIN {gtin} is unknown", rule="unit.unknown")
    policy = policy_for_product(session=session, gtin=gtin, default=policy)
    return unit_temperature(session=session, events=events, policy=policy)
