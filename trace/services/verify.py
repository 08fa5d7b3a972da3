"""Verify a unit: its verdict, its path, and what anyone needs to check that path.

The answer carries the latest signed checkpoint, and for every event, every version of the
unit's lot record (with its documents' hashes) and every reading of its temperature history its
ledger leaf and its inclusion proof against that checkpoint, so a browser or an independent
checker can verify the whole path, and the temperatures charted, with the log's, the stations'
and the sensors' public keys alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlmodel import Session

from medtrace import ledger
from medtrace.models import Event, EventType, Participant, Unit, Verdict, as_utc
from medtrace.models.alerts import Alert
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64
from medtrace.schemas.participants import ParticipantPublic
from medtrace.schemas.sensors import TemperaturePublic
from medtrace.schemas.verify import (
    QuarantinePublic,
    UnitPublic,
    VerifyEvent,
    VerifyPublic,
    VerifyReading,
)
from medtrace.services import lots
from medtrace.services.temperature import TemperaturePolicy, policy_for_product, unit_temperature
from medtrace.store import events as event_store
from medtrace.store import participants as participant_store
from medtrace.store import recalls as recall_store
from medtrace.store import suspects as suspect_store
from medtrace.store import units as unit_store


def verify_unit(
    *,
    session: Session,
    gtin: str,
    serial: str,
    today: dt.date,
    base_url: str,
    lot: str | None = None,
    expiry: dt.date | None = None,
    temperature: TemperaturePolicy | None = None,
) -> VerifyPublic:
    """The verdict and the provable path of unit ``gtin``/``serial``.

    ``lot`` and ``expiry`` are what the pack's code says; if they differ from what was
    commissioned, the pack is suspect (a relabelled or cloned code).
    """
    conn = session.connection()
    checkpoint = ledger.latest_checkpoint(conn)
    note = checkpoint.note if checkpoint else None
    unit = unit_store.get_unit(session=session, gtin=gtin, serial=serial)
    if unit is None:
        return VerifyPublic(
            verdict=Verdict.UNKNOWN,
            reasons=[f"serial {serial} of GTIN {gtin} was never commissioned in this log"],
            unit=None,
            checkpoint=note,
            events=[],
        )
    events = event_store.get_unit_events(session=session, gtin=gtin, serial=serial)
    participants = participant_store.get_participants(
        session=session, ids=[e.participant_id for e in events]
    )
    holder = next(
        (p for p in participants.values() if p.gln == unit.holder_gln), None
    ) or participant_store.get_participant_by_gln(session=session, gln=unit.holder_gln)
    hold = _current_hold(session, unit, events)
    reasons = _reasons(unit, today, lot, expiry, hold)
    reasons.extend(_flags(session, unit))
    history = (
        None
        if temperature is None
        else unit_temperature(
            session=session,
            events=events,
            policy=policy_for_product(session=session, gtin=gtin, default=temperature),
        )
    )
    unsigned = sum(1 for e in events if e.station_id is None)
    if unsigned:
        reasons.append(
            (
                Verdict.GENUINE,
                f"{unsigned} of {len(events)} events were recorded on a participant's API token "
                "(EPCIS or FHIR), without a station signature",
            )
        )
    return VerifyPublic(
        verdict=worst_verdict(reasons),
        reasons=[text for _, text in reasons],
        unit=UnitPublic(
            gtin=unit.gtin,
            serial=unit.serial,
            lot=unit.lot,
            expiry=unit.expiry,
            state=unit.state,
            holder=public_participant(holder),
            digital_link=base_url
            + digital_link_path(unit.gtin, unit.serial, lot=unit.lot, expiry=unit.expiry),
            parent_sscc=unit.parent_sscc,
        ),
        checkpoint=note,
        events=provable_events(session, events, participants, checkpoint),
        lot_records=lots.provable_lot_records(
            session=session,
            gtin=unit.gtin,
            lot=unit.lot,
            checkpoint_size=checkpoint.size if checkpoint else 0,
            base_url=base_url,
        ),
        temperature=history,
        readings=[] if history is None else _provable_readings(session, history, checkpoint),
        quarantine=None if hold is None else _provable_hold(session, hold, checkpoint),
    )


def _current_hold(session: Session, unit: Unit, events: Sequence[Event]) -> Alert | None:
    """The alert that holds the unit in quarantine: its latest hold, unless a ``release``
    of the unit (or of a case holding it) was recorded after that alert's leaf."""
    if not unit.quarantined:
        return None
    alert = unit_store.latest_hold(session=session, gtin=unit.gtin, serial=unit.serial)
    if alert is None or alert.leaf_index is None:
        return None
    released = any(e.type is EventType.RELEASE and e.leaf_index > alert.leaf_index for e in events)
    return None if released else alert


def _provable_hold(
    session: Session, alert: Alert, checkpoint: ledger.StoredCheckpoint | None
) -> QuarantinePublic:
    assert alert.leaf_index is not None
    conn = session.connection()
    size = checkpoint.size if checkpoint else 0
    proof = (
        ledger.inclusion_proof_at(conn, alert.leaf_index, size) if alert.leaf_index < size else None
    )
    return QuarantinePublic(
        rule=alert.rule,
        reason=alert.message,
        raised_at=as_utc(alert.created_at),
        leaf_index=alert.leaf_index,
        leaf=b64(ledger.leaves_at(conn, [alert.leaf_index])[alert.leaf_index]),
        inclusion_proof=None if proof is None else [h.hex() for h in proof],
    )


def _reasons(
    unit: Unit, today: dt.date, lot: str | None, expiry: dt.date | None, hold: Alert | None
) -> list[tuple[Verdict, str]]:
    reasons: list[tuple[Verdict, str]] = []
    if lot is not None and lot != unit.lot:
        reasons.append((Verdict.SUSPECT, f"the code says lot {lot}, the log says {unit.lot}"))
    if expiry is not None and expiry != unit.expiry:
        reasons.append(
            (Verdict.SUSPECT, f"the code says expiry {expiry}, the log says {unit.expiry}")
        )
    if hold is not None:
        reasons.append(
            (
                Verdict.QUARANTINED,
                f"quarantined by medtrace ({hold.rule}, alert leaf {hold.leaf_index}) until "
                f"its holder's QA releases it: {hold.message}",
            )
        )
    elif unit.quarantined:
        reasons.append((Verdict.QUARANTINED, "quarantined by its holder's QA until released"))
    if unit.expiry < today:
        reasons.append((Verdict.EXPIRED, f"expired on {unit.expiry}"))
    return reasons


def _flags(session: Session, unit: Unit) -> list[tuple[Verdict, str]]:
    """What the rules flagged: the lot's recall, and every suspicion about the unit."""
    flags = [
        (Verdict.SUSPECT, reason)
        for reason in suspect_store.get_suspicion_reasons(
            session=session, gtin=unit.gtin, serial=unit.serial
        )
    ]
    recall = recall_store.get_recall(session=session, gtin=unit.gtin, lot=unit.lot)
    if recall is not None:
        by = participant_store.get_participant(
            session=session, participant_id=recall.participant_id
        )
        flags.append(
            (
                Verdict.RECALLED,
                f"lot {unit.lot} recalled on {recall.event_time.date()} by "
                f"{by.name if by else 'its manufacturer'}: {recall.reason}",
            )
        )
    return flags


def worst_verdict(reasons: list[tuple[Verdict, str]]) -> Verdict:
    """The worst verdict among ``reasons`` (``Verdict`` is declared worst first), or
    ``genuine`` when nothing is wrong."""
    order = list(Verdict)
    return min((v for v, _ in reasons), key=order.index, default=Verdict.GENUINE)


def public_participant(participant: Participant | None) -> ParticipantPublic | None:
    """What the public may see of a participant (DESIGN.md, 'Privacy')."""
    if participant is None:
        return None
    return ParticipantPublic(
        gln=participant.gln, name=participant.name, role=participant.role, city=participant.city
    )


def provable_events(
    session: Session,
    rows: Sequence[Event],
    participants: dict[int, Participant],
    checkpoint: ledger.StoredCheckpoint | None,
) -> list[VerifyEvent]:
    """Each of ``rows`` with its leaf and its inclusion proof against ``checkpoint`` (none
    for a leaf the checkpoint does not cover yet): a unit's or a container's path."""
    conn = session.connection()
    size = checkpoint.size if checkpoint else 0
    indexes = [e.leaf_index for e in rows]
    leaves = ledger.leaves_at(conn, indexes)
    proofs = ledger.inclusion_proofs_at(conn, [i for i in indexes if i < size], size)
    return [
        _provable_event(e, leaves[e.leaf_index], proofs.get(e.leaf_index), participants)
        for e in rows
    ]


def _provable_readings(
    session: Session,
    history: TemperaturePublic,
    checkpoint: ledger.StoredCheckpoint | None,
) -> list[VerifyReading]:
    """The leaf and inclusion proof of each charted reading: the page checks that the value
    it draws is the one the sensor signed (a reading's row could be changed in the store)."""
    conn = session.connection()
    size = checkpoint.size if checkpoint else 0
    indexes = [p.leaf_index for p in history.series]
    leaves = ledger.leaves_at(conn, indexes)
    proofs = ledger.inclusion_proofs_at(conn, [i for i in indexes if i < size], size)
    return [
        VerifyReading(
            sensor_id=p.sensor_id,
            seq=p.seq,
            leaf_index=p.leaf_index,
            leaf=b64(leaves[p.leaf_index]),
            inclusion_proof=None
            if p.leaf_index not in proofs
            else [h.hex() for h in proofs[p.leaf_index]],
        )
        for p in history.series
    ]


def _provable_event(
    row: Event, leaf: bytes, proof: list[bytes] | None, participants: dict[int, Participant]
) -> VerifyEvent:
    """One step; its readable fields are read from the signed leaf, so they are exactly
    what the station signed (a time keeps its original text, for instance)."""
    recorded = json.loads(leaf)
    signed = recorded["event"]
    return VerifyEvent(
        leaf_index=row.leaf_index,
        leaf=b64(leaf),
        inclusion_proof=None if proof is None else [h.hex() for h in proof],
        event_id=row.event_id,
        type=signed["type"],
        event_time=signed["event_time"],
        gln=signed["gln"],
        destination_gln=signed.get("destination_gln"),
        station_id=signed.get("station_id"),
        authenticated_by="station_signature" if "signature" in recorded else "participant_token",
        participant=public_participant(participants.get(row.participant_id)),
    )
