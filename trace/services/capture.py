"""Capture: signed envelopes in, durable events and ledger leaves out.

A batch is one transaction. Each envelope is checked in order (station known, the caller's,
active; signature by one of its keys, that key not revoked nor rotated out before the event,
see ``medtrace.key_history``; event shape and time; replay window for new events; custody
rule) against the state left by the envelopes before it, and the first refusal rolls
everything back, naming the envelope's index and the rule.
Only when every envelope passes are the leaves appended and the events written, in the same
transaction: nothing is acknowledged before it is committed, and a retry of an acknowledged
event returns its first receipt and writes nothing.

Authentication (signatures, event shape, the ledger leaf and the EPCIS event hash) needs no
write lock and runs first, in a read transaction of its own: two API processes check their
batches at the same time and take turns only for the custody decisions and the writes. The
custody transaction reads in bulk (known event ids, the units and containers the batch names:
one query each) and writes in bulk. Rows read for custody are locked (``FOR UPDATE`` on
PostgreSQL; SQLite has one writer at a time), so of two conflicting moves of the same unit in
two processes exactly one succeeds: the other sees the first's result once it commits and is
refused by the custody rules, or fails with a retryable ``store.conflict``.

Some refusals are evidence of counterfeits (a serial never commissioned, a dispensed pack
presented again, a serial held in another's stock), some accepted receipts are suspect (of
what was shipped elsewhere, under the ``flag_suspect`` receipt policy; sooner after the
shipment than ``min_transit``): the suspect rules (``medtrace.contracts.suspect``) turn those
into suspicions. Those
of accepted events mark their units in the batch's transaction (a refused batch drops them with
everything else); the evidence of a refused event is recorded in a transaction of its own once
the batch has rolled back. Alerts are raised after the batch has ended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlmodel import Session

from medtrace import custody, ledger
from medtrace.contracts import suspect
from medtrace.custody import (
    MOVING_STATES,
    ContainerKey,
    Custody,
    Key,
    ReceiptPolicy,
    UnitKey,
)
from medtrace.db import lost_race_raises, writer_turn
from medtrace.epcis.document import biz_location, to_epcis
from medtrace.errors import (
    Conflict,
    CustodyViolation,
    InvalidInput,
    MedtraceError,
    SignatureRejected,
)
from medtrace.key_history import check_key_usable, signing_key
from medtrace.ledger import MAX_ENTRY_SIZE
from medtrace.models import EventType, Participant, Role, Station, StationKey, utcnow
from medtrace.protocol.envelope import CanonicalEnvelope, canonical_json
from medtrace.schemas.capture import CaptureResult, EnvelopeIn, SignedEvent
from medtrace.services import suspects as suspect_service
from medtrace.services.cn_codes import CnCommissionRule
from medtrace.store import devices as device_store
from medtrace.store import events as event_store
from medtrace.store import grants as grant_store
from medtrace.store import participants as participant_store
from medtrace.store import units as unit_store

#: How far ahead of the server's clock an event may be stamped (clock drift of a station).
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)
#: The events that put an object on the road to a destination.
MOVES_ON_THE_ROAD = frozenset({EventType.SHIP, EventType.RETURN})


@dataclass(frozen=True)
class ReplayWindow:
    """How old a signed event may be when it arrives.

    An envelope is a bearer of its signature: anyone who copied it could send it again
    later. Events older than ``window`` are refused (``capture.stale_event``) unless the
    request says it is a station outbox catching up after being offline; those may be as old
    as ``catch_up_window`` and no older. The flag widens that one bound and nothing else:
    signature, key validity and custody rules apply as always, and an event captured before
    is still answered with its first receipt, whatever its age.
    """

    window: dt.timedelta
    catch_up_window: dt.timedelta

    def oldest_allowed(self, now: dt.datetime, *, catch_up: bool) -> dt.datetime:
        """The earliest ``event_time`` accepted at ``now``."""
        return now - (self.catch_up_window if catch_up else self.window)


@dataclass(frozen=True)
class Authenticated:
    """An event whose author is established (a station's signature, or the participant's
    token for EPCIS capture) and whose shape passed: ready for the custody rules.

    ``leaf`` is its ledger leaf and ``epcis_id`` its CBV event hash, both computed before the
    write lock is taken; ``event_time`` is the time as the author wrote it.
    """

    event: SignedEvent
    event_id: str
    event_time: str
    station_id: str | None
    leaf: bytes
    epcis_id: str

    @classmethod
    def of(
        cls,
        event: SignedEvent,
        *,
        event_id: str,
        event_time: str,
        station_id: str | None,
        leaf: bytes,
        objects: Sequence[Sequence[Any]],
        epcis_id: str | None = None,
    ) -> Authenticated:
        """The authenticated event with its EPCIS event id (``epcis_id``, the id of the EPCIS
        event it was captured from; by default the CBV 2.0 hash of its own EPCIS form);
        ``InvalidInput`` when its leaf is too large for the ledger (``check_leaf_size``, with
        the lists of ``objects`` the leaf holds, to say how to split it)."""
        check_leaf_size(leaf, objects=objects)
        return cls(
            event=event,
            event_id=event_id,
            event_time=event_time,
            station_id=station_id,
            leaf=leaf,
            epcis_id=epcis_id or to_epcis(event, event_time)["eventID"],
        )


def check_leaf_size(leaf: bytes, *, objects: Sequence[Sequence[Any]] = ()) -> None:
    """Refuse an event whose ledger leaf is longer than one c2sp.org/tlog-tiles entry holds
    (``MAX_ENTRY_SIZE``, 65 535 bytes): the log could serve its entry bundle to no one, so no
    tlog-tiles client could read the log past it (``input.leaf_too_large``).

    The leaf is measured as encoded, since what fits depends on the path (a station's
    envelope, an EPCIS event kept as sent) and on the serials. ``objects`` are the JSON lists
    in the leaf that grow with the objects the event lists (its children; an EPCIS event's
    EPCs): the message says how many objects one event may list (``_objects_that_fit``),
    for the sender to split a large pack into cases of at most that many children, packed in
    turn onto the pallet.
    """
    if len(leaf) <= MAX_ENTRY_SIZE:
        return
    count, fits = _objects_that_fit(len(leaf), objects)
    advice = (
        f"split it into events of at most {fits} objects each (a large pack: cases of at "
        f"most {fits} children each, then pack the cases onto the pallet)"
        if count > 1 and fits > 0
        else "send less in one event"
    )
    raise InvalidInput(
        f"the event's ledger leaf would have {len(leaf)} bytes, more than a log entry holds "
        f"({MAX_ENTRY_SIZE}); {advice}",
        rule="input.leaf_too_large",
        leaf_bytes=len(leaf),
        max_leaf_bytes=MAX_ENTRY_SIZE,
        max_objects=fits,
    )


def _objects_that_fit(size: int, lists: Sequence[Sequence[Any]]) -> tuple[int, int]:
    """How many objects an event of leaf ``size`` lists, and how many of them any one event
    may list for its leaf to fit: the leaf without the ``lists``' values, plus that many times
    the largest object (its values in every list, each with its comma), stays within
    ``MAX_ENTRY_SIZE`` whichever objects are chosen."""
    count = max((len(values) for values in lists), default=0)
    costs = [0] * count
    for values in lists:
        for index, value in enumerate(values):
            costs[index] += len(canonical_json(value)) + 1
    if not costs:
        return 0, 0
    rest = size - sum(costs)
    return count, max(0, (MAX_ENTRY_SIZE - rest) // max(costs))


class _World:
    """The custody view of one batch: rows read from the store (locked), updated in memory by
    each accepted event, written back at the end."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.original: dict[Key, Custody | None] = {}
        self.current: dict[Key, Custody | None] = {}
        self._by_parent: dict[str, set[Key]] = {}
        self._contents_loaded: set[str] = set()

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Read (and lock) every object in ``keys`` not read yet, in two queries."""
        missing = [k for k in dict.fromkeys(keys) if k not in self.current]
        units = [k for k in missing if isinstance(k, UnitKey)]
        containers = [k for k in missing if isinstance(k, ContainerKey)]
        found = {
            **unit_store.lock_units(conn=self._conn, keys=units),
            **unit_store.lock_containers(conn=self._conn, keys=containers),
        }
        for key in missing:
            self._remember(key, found.get(key))

    def _remember(self, key: Key, value: Custody | None) -> None:
        self.original[key] = self.current[key] = value
        if value is not None and value.parent_sscc is not None:
            self._by_parent.setdefault(value.parent_sscc, set()).add(key)

    def custody(self, key: Key) -> Custody | None:
        if key not in self.current:
            self.prefetch([key])
        return self.current[key]

    def contents(self, sscc: str) -> Sequence[Key]:
        if sscc not in self._contents_loaded:
            self._contents_loaded.add(sscc)
            for key, value in unit_store.lock_contents(conn=self._conn, sscc=sscc).items():
                if key not in self.current:
                    self._remember(key, value)
        return sorted(self._by_parent.get(sscc, ()), key=str)

    def apply(self, changes: dict[Key, Custody]) -> None:
        for key, after in changes.items():
            before = self.current.get(key)
            if before is not None and before.parent_sscc is not None:
                self._by_parent[before.parent_sscc].discard(key)
            if after.parent_sscc is not None:
                self._by_parent.setdefault(after.parent_sscc, set()).add(key)
            self.current[key] = after


@dataclass
class _Batch:
    """What a batch has decided so far, before anything is written."""

    actor: custody.Actor
    presenter: suspect.Presenter
    participant_id: int
    world: _World
    cn_codes: CnCommissionRule
    receipt_policy: ReceiptPolicy
    min_transit: dt.timedelta  # a receipt sooner after its shipment is suspect
    accepted_suspicions: list[suspect.Suspicion]  # of accepted events: written with the batch
    refusal_evidence: list[suspect.Suspicion]  # of the refused event: recorded after rollback
    oldest_allowed: dt.datetime | None  # events stamped earlier are stale (None: no bound)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (event id, duplicate)
    known: dict[str, int] = field(default_factory=dict)  # captured before: id -> leaf index
    new: dict[str, event_store.NewEvent] = field(default_factory=dict)
    participants: dict[str, Participant | None] = field(default_factory=dict)  # by GLN
    granted: dict[str, custody.Actor] = field(default_factory=dict)  # principals, by GLN
    shipped_at: dict[Key, dt.datetime] = field(default_factory=dict)  # of objects received


def capture_envelopes(
    *,
    session: Session,
    participant: Participant,
    envelopes: Sequence[EnvelopeIn],
    replay: ReplayWindow,
    catch_up: bool = False,
    receipt_policy: ReceiptPolicy = ReceiptPolicy.REFUSE,
    min_transit: dt.timedelta = dt.timedelta(0),
) -> list[CaptureResult]:
    """Capture a batch of signed envelopes for ``participant``; all or nothing.

    ``catch_up`` says a station outbox sends what it held while offline (see
    ``ReplayWindow``); a receipt sooner than ``min_transit`` after its shipment is accepted
    but suspect. Raises the ``MedtraceError`` of the first refused envelope (its
    ``index`` in the context), or ``Conflict`` when a concurrent capture won a race on the
    same units (retry is safe).
    """
    if not envelopes:
        raise InvalidInput("send at least one envelope", rule="capture.empty")
    return capture_authenticated(
        session=session,
        participant=participant,
        check=lambda: _check_signed(session, participant, envelopes),
        receipt_policy=receipt_policy,
        min_transit=min_transit,
        oldest_allowed=replay.oldest_allowed(utcnow(), catch_up=catch_up),
    )


def capture_authenticated(
    *,
    session: Session,
    participant: Participant,
    check: Callable[[], tuple[list[Authenticated], MedtraceError | None]],
    receipt_policy: ReceiptPolicy = ReceiptPolicy.REFUSE,
    min_transit: dt.timedelta = dt.timedelta(0),
    oldest_allowed: dt.datetime | None = None,
    also_write: Callable[[Session], None] | None = None,
) -> list[CaptureResult]:
    """The transaction shared by every capture path: ``check`` authenticates and parses the
    batch in order (returning the events up to the first refusal, and that refusal) in a read
    transaction of its own, then the custody rules run in order and everything is written, or
    nothing. A new event stamped before ``oldest_allowed`` is refused as stale. Suspicions
    found on the way are recorded whether the batch commits or not. ``also_write`` writes
    what the capture path keeps beside its events (EPCIS: the events as sent) in the same
    transaction, before the custody rules run (so its own refusals, such as an eventID
    captured before, come first); it may refuse the batch by raising.
    """
    assert participant.id is not None
    accepted: list[suspect.Suspicion] = []
    evidence: list[suspect.Suspicion] = []
    with session.begin():
        checked, refusal = check()
    try:
        with (
            lost_race_raises(_conflict()),
            writer_turn(session.get_bind().engine),
            session.begin(),
        ):
            conn = session.connection()
            ledger.begin_append(conn)
            batch = _Batch(
                actor=_actor(participant),
                presenter=suspect.Presenter(participant.gln, participant.name),
                participant_id=participant.id,
                world=_World(conn),
                cn_codes=CnCommissionRule(session),
                receipt_policy=receipt_policy,
                min_transit=min_transit,
                accepted_suspicions=accepted,
                refusal_evidence=evidence,
                oldest_allowed=oldest_allowed,
            )
            if also_write is not None:
                also_write(session)
            _decide(session, batch, checked)
            if refusal is not None:
                raise refusal
            _write(conn, batch)
            suspect_service.mark(session=session, suspicions=accepted)
    except CustodyViolation:
        suspect_service.flag_suspects(session=session, suspicions=evidence)
        raise
    suspect_service.raise_alerts(session=session, suspicions=accepted)
    return [_receipt(batch, eid, duplicate) for eid, duplicate in batch.order]


def _actor(participant: Participant) -> custody.Actor:
    return custody.Actor(participant.gln, participant.role, participant.company_prefix)


def _receipt(batch: _Batch, eid: str, duplicate: bool) -> CaptureResult:
    if eid in batch.known:
        return CaptureResult(event_id=eid, leaf_index=batch.known[eid], duplicate=True)
    new = batch.new[eid]
    return CaptureResult(
        event_id=eid,
        leaf_index=new.leaf_index,
        duplicate=duplicate,
        units=None if duplicate else len(new.units),
    )


def _conflict() -> Conflict:
    return Conflict(
        "a concurrent capture touched the same units; retrying the batch is safe",
        rule="store.conflict",
    )


def _check_signed(
    session: Session, participant: Participant, envelopes: Sequence[EnvelopeIn]
) -> tuple[list[Authenticated], MedtraceError | None]:
    """Station, signature and shape of each envelope, in order, up to the first refusal
    (returned, with its index, to be raised unless an earlier envelope breaks a custody
    rule). An event at another participant's GLN (for a principal, under a grant the custody
    transaction checks) gets a leaf that names the participant who captured it too."""
    station_ids = {e.station_id for e in envelopes}
    stations = device_store.get_devices(
        session=session, tables=device_store.STATIONS, device_ids=station_ids
    )
    keys = device_store.get_keys(
        session=session, tables=device_store.STATIONS, device_ids=station_ids
    )
    now = utcnow()
    checked: list[Authenticated] = []
    for index, envelope in enumerate(envelopes):
        try:
            canonical = CanonicalEnvelope(
                canonical_json(envelope.event), envelope.signature, envelope.station_id
            )
            _check_station(stations.get(envelope.station_id), participant.id, envelope)
            key = signing_key(keys[envelope.station_id], canonical.verify)
            event = _parse_event(envelope, now)
            _check_key_usable(session, key, canonical, event)
            checked.append(
                Authenticated.of(
                    event,
                    event_id=canonical.event_id,
                    event_time=envelope.event["event_time"],
                    station_id=envelope.station_id,
                    leaf=canonical.leaf(
                        captured_by=None if event.gln == participant.gln else participant.gln
                    ),
                    objects=[envelope.event.get("children") or ()],
                )
            )
        except MedtraceError as exc:
            exc.context.setdefault("index", index)
            return checked, exc
    return checked, None


def _check_key_usable(
    session: Session, key: StationKey, canonical: CanonicalEnvelope, event: SignedEvent
) -> None:
    """Refuse a new event signed by a revoked or rotated-out key (``check_key_usable``), but
    not an event captured before: the signature verified over the same bytes, so it is that
    event again, and a retry gets its first receipt, writing nothing, whatever happened to
    the key since (a station's outbox may resend after losing an acknowledgement)."""
    try:
        check_key_usable(
            key, owner="station", name=canonical.station_id, signed_at=event.event_time
        )
    except SignatureRejected:
        captured = event_store.get_leaf_indexes(session=session, event_ids=[canonical.event_id])
        if canonical.event_id not in captured:
            raise


def _decide(session: Session, batch: _Batch, checked: Sequence[Authenticated]) -> None:
    """Apply the custody rules to each checked envelope in order, against the batch so far."""
    known = event_store.get_leaf_indexes(
        session=session, event_ids=list({c.event_id for c in checked})
    )
    batch.world.prefetch(
        key
        for c in checked
        if c.event_id not in known
        for key in (custody.key_of(c.event), *map(custody.key_of, c.event.children or ()))
    )
    batch.granted = _principals(session, batch, {c.event.gln for c in checked})
    batch.shipped_at = event_store.get_shipment_times(
        session=session,
        keys={
            custody.key_of(c.event)
            for c in checked
            if c.event.type is EventType.RECEIVE and c.event_id not in known
        },
    )
    for index, item in enumerate(checked):
        eid = item.event_id
        if eid in batch.new or eid in batch.known:
            batch.order.append((eid, True))
            continue
        if eid in known:
            batch.known[eid] = known[eid]
            batch.order.append((eid, True))
            continue
        try:
            _check_fresh(batch, item.event)
            _apply_custody(session, batch, item)
        except CustodyViolation as exc:
            exc.context.setdefault("index", index)
            current = batch.world.custody(custody.key_of(item.event))
            found = suspect.on_refusal(item.event, exc.rule, current, batch.presenter)
            if found is not None:
                batch.refusal_evidence.append(found)
            raise
        except MedtraceError as exc:
            exc.context.setdefault("index", index)
            raise
        batch.order.append((eid, False))


def _principals(session: Session, batch: _Batch, glns: set[str]) -> dict[str, custody.Actor]:
    """The principals whose grants, valid now, let the batch's participant capture at the
    ``glns`` not its own (read, and locked for share, in the custody transaction: a grant
    revoked before it began counts for nothing)."""
    found = grant_store.granting_principals(
        session=session,
        grantee_id=batch.participant_id,
        glns=glns - {batch.actor.gln},
        at=utcnow(),
    )
    return {gln: _actor(principal) for gln, principal in found.items()}


def _check_station(
    station: Station | None, participant_id: int | None, envelope: EnvelopeIn
) -> None:
    """Refuse an envelope of a station the caller may not use."""
    if station is None:
        raise SignatureRejected(
            f"station {envelope.station_id!r} is not registered; register its public key first",
            rule="station.unknown",
        )
    if station.participant_id != participant_id:
        raise SignatureRejected(
            f"station {envelope.station_id!r} belongs to another participant",
            rule="station.not_yours",
        )
    if not station.active:
        raise SignatureRejected(
            f"station {envelope.station_id!r} is deactivated", rule="station.inactive"
        )


def _parse_event(envelope: EnvelopeIn, now: dt.datetime) -> SignedEvent:
    try:
        event = SignedEvent.model_validate(envelope.event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidInput(f"event.{where}: {first['msg']}", rule="event.invalid") from exc
    if event.station_id != envelope.station_id:
        raise InvalidInput(
            "the event's station_id differs from the envelope's", rule="event.station_mismatch"
        )
    check_event_time(event, now)
    return event


def token_authenticated(
    *,
    source: str,
    sent: Mapping[str, Any],
    event: dict[str, Any],
    participant_gln: str,
    objects: Sequence[Sequence[Any]] = (),
    epcis_id: str | None = None,
) -> Authenticated:
    """An event recorded on a participant's API token (EPCIS or FHIR), not a station key.

    Its ledger leaf says so: the canonical JSON of ``{source: sent, "event", "participant"}``
    (the request as the participant sent it, under the name of its standard; the medtrace
    event read from it; the participant's GLN), with no ``signature`` or ``station_id``, so
    any reader can tell a token-captured event from a station-signed one. Raises
    ``InvalidInput`` (rule ``{source}.invalid_event``) when the event has the wrong shape,
    or ``input.leaf_too_large`` when its leaf is (``objects``: the lists in ``sent`` that
    grow with the objects it names; the event's children are counted too). ``epcis_id``:
    the id of the EPCIS event it was read from, if any (``Authenticated.of``).
    """
    try:
        parsed = SignedEvent.model_validate(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidInput(f"{where}: {first['msg']}", rule=f"{source}.invalid_event") from exc
    check_event_time(parsed, utcnow())
    leaf = canonical_json({source: sent, "event": event, "participant": participant_gln})
    return Authenticated.of(
        parsed,
        event_id=hashlib.sha256(leaf).hexdigest(),
        event_time=event["event_time"],
        station_id=None,
        leaf=leaf,
        objects=[*objects, event.get("children") or ()],
        epcis_id=epcis_id,
    )


def check_event_time(event: SignedEvent, now: dt.datetime) -> None:
    """Refuse an event stamped later than the server's clock allows (``MAX_CLOCK_SKEW``)."""
    if event.event_time > now + MAX_CLOCK_SKEW:
        raise InvalidInput(
            f"event_time {event.event_time.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')})",
            rule="capture.future_event",
        )


def _check_fresh(batch: _Batch, event: SignedEvent) -> None:
    """Refuse a new event older than the replay window allows (duplicates never get here)."""
    if batch.oldest_allowed is not None and event.event_time < batch.oldest_allowed:
        raise InvalidInput(
            f"event_time {event.event_time.isoformat()} is older than the replay window "
            f"(oldest accepted now: {batch.oldest_allowed.isoformat(timespec='seconds')})",
            rule="capture.stale_event",
        )


def _apply_custody(session: Session, batch: _Batch, item: Authenticated) -> None:
    event = item.event
    principal = custody.acting_at(event.gln, batch.actor, batch.granted, what="the event")
    if event.type in MOVES_ON_THE_ROAD:
        _check_destination(session, batch, event)
    if event.type is EventType.STORE:
        _check_location(session, batch, event, principal)
    target = custody.key_of(event)
    before = batch.world.custody(target)
    outcome = custody.apply_event(
        event, batch.world, principal, receipt_policy=batch.receipt_policy
    )
    if event.type is EventType.COMMISSION:
        assert event.gtin is not None and event.serial is not None
        batch.cn_codes.check(event.gtin, event.serial)
    batch.world.apply(outcome.changes)
    if event.type in MOVES_ON_THE_ROAD:
        batch.shipped_at[target] = event.event_time
    if outcome.diversion is not None:
        found = suspect.diverted_receipt(outcome.diversion, outcome.units, _lots(batch, outcome))
        batch.accepted_suspicions.append(found)
    if event.type is EventType.RECEIVE and before is not None:
        _check_transit(batch, event, before, outcome)
    batch.new[item.event_id] = event_store.NewEvent(
        event_id=item.event_id,
        event=event,
        station_id=item.station_id,
        participant_id=batch.participant_id,
        leaf=item.leaf,
        epcis_id=item.epcis_id,
        biz_location=biz_location(event),
        units=[(k.gtin, k.serial) for k in outcome.units],
    )


def _check_transit(
    batch: _Batch, receipt: SignedEvent, before: Custody, outcome: custody.Outcome
) -> None:
    """Suspect an accepted receipt of an object on its way that came impossibly soon after
    its shipment (``suspect.impossible_transit``)."""
    target = custody.key_of(receipt)
    shipped_at = batch.shipped_at.get(target)
    if before.state not in MOVING_STATES or shipped_at is None:
        return
    transit = suspect.Transit(
        target=target,
        sender_gln=before.holder_gln,
        shipped_at=shipped_at,
        receiver_gln=receipt.gln,
        received_at=receipt.event_time,
    )
    found = suspect.impossible_transit(
        transit, outcome.units, _lots(batch, outcome), min_transit=batch.min_transit
    )
    if found is not None:
        batch.accepted_suspicions.append(found)


def _lots(batch: _Batch, outcome: custody.Outcome) -> list[tuple[str, str]]:
    """The (GTIN, lot) pairs of the units an event moved."""
    return [(k.gtin, c.lot) for k in outcome.units if (c := batch.world.custody(k)) and c.lot]


def _participant_at(session: Session, batch: _Batch, gln: str) -> Participant | None:
    """The participant registered with ``gln``, read once per batch."""
    if gln not in batch.participants:
        batch.participants[gln] = participant_store.get_participant_by_gln(session=session, gln=gln)
    return batch.participants[gln]


def _check_location(
    session: Session, batch: _Batch, event: SignedEvent, principal: custody.Actor
) -> None:
    """Refuse a store event that keeps the principal's goods at another participant's site
    (``custody.wrong_location``, decided by ``custody.acting_at`` as for the event's GLN):
    stock lists are read by place, so the goods would show up in that participant's stock.
    A place inside the principal's site (a GLN no participant registered) passes. Grants
    name where one may capture, not where goods may be kept: none counts for the place."""
    gln = event.location_gln
    if gln is None or gln == principal.gln:
        return
    owner = _participant_at(session, batch, gln)
    if owner is not None:
        custody.acting_at(gln, principal, {}, what=f"the store place (the site of {owner.name})")


def _check_destination(session: Session, batch: _Batch, event: SignedEvent) -> None:
    gln = event.destination_gln
    assert gln is not None
    destination = _participant_at(session, batch, gln)
    if destination is None:
        raise CustodyViolation(
            f"destination {gln} is not a registered participant",
            rule="custody.unknown_destination",
        )
    if destination.role is Role.REGULATOR:
        raise CustodyViolation(
            "goods are not shipped to a regulator", rule="custody.bad_destination"
        )


def _write(conn: Connection, batch: _Batch) -> None:
    """Append the leaves, then write events, their unit links and the custody changes."""
    if not batch.new:
        return
    rows = list(batch.new.values())
    first = ledger.append_leaves(conn, [row.leaf for row in rows])
    for offset, row in enumerate(rows):
        row.leaf_index = first + offset
    event_store.add_events(conn=conn, events=rows)
    world = batch.world
    changed = {
        key: after
        for key, after in world.current.items()
        if after is not None and after != world.original.get(key)
    }
    unit_store.save_custody(
        conn=conn,
        changes=changed,
        created={key for key in changed if world.original.get(key) is None},
        now=utcnow(),
    )
