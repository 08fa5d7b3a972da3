"""Suspicion: mark units suspect and raise the alerts, and watch public verifications.

The patterns themselves are pure functions (``medtrace.contracts.suspect``); this service
feeds them and records what they find. A suspicion found while capture refused an event is
recorded after the refusal rolled back: the refusal writes nothing of the event, but the
attempt is kept as evidence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Sequence

from sqlmodel import Session

from medtrace.contracts.suspect import (
    Suspicion,
    VerifyTally,
    VerifyWatch,
    verified_after_dispense,
    watch_start,
)
from medtrace.custody import UnitKey
from medtrace.models import EventType, UnitState
from medtrace.schemas.alerts import AlertPublic
from medtrace.schemas.verify import VerifyPublic
from medtrace.services.alerts import record_findings
from medtrace.services.verifications import Verification, VerificationCounter
from medtrace.store import suspects as suspect_store


def mark(*, session: Session, suspicions: Sequence[Suspicion]) -> None:
    """Mark the suspicions' units, inside the caller's transaction."""
    conn = session.connection()
    for suspicion in suspicions:
        if suspicion.units:
            finding = suspicion.finding
            suspect_store.mark_units(
                conn=conn,
                units=suspicion.units,
                rule=finding.rule,
                reason=finding.message,
                dedup_key=finding.dedup_key,
            )


def raise_alerts(*, session: Session, suspicions: Sequence[Suspicion]) -> list[AlertPublic]:
    """Raise the suspicions' alerts not raised before (their units are marked already)."""
    if not suspicions:
        return []
    return record_findings(session=session, findings=[s.finding for s in suspicions])


def flag_suspects(*, session: Session, suspicions: Sequence[Suspicion]) -> list[AlertPublic]:
    """Mark the units (one transaction) and raise the alerts not raised before."""
    if not suspicions:
        return []
    with session.begin():
        mark(session=session, suspicions=suspicions)
    return raise_alerts(session=session, suspicions=suspicions)


def place_hash(address: str, salt: bytes) -> str:
    """Where a request came from, as HMAC-SHA256 of its network (IPv4 /24, IPv6 /48) under a
    secret salt: two requests from one network are one place, and no address is stored."""
    try:
        ip = ipaddress.ip_address(address)
        prefix = 24 if ip.version == 4 else 48
        network = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
    except ValueError:
        network = address
    return hmac.new(salt, network.encode(), hashlib.sha256).hexdigest()


def verify_watched(
    *,
    session: Session,
    verify: Callable[[], VerifyPublic],
    place: str,
    watch: VerifyWatch,
    counter: VerificationCounter,
    now: dt.datetime,
) -> VerifyPublic:
    """A public verification (``verify``) that, for a dispensed unit, is counted, and raises a
    ``suspect.verified_after_dispense`` alert once the watch's thresholds are reached; the
    answer then already says ``suspect``."""
    answer = verify()
    unit = answer.unit
    dispensed = [e for e in answer.events if e.type is EventType.DISPENSE]
    if unit is None or unit.state is not UnitState.DISPENSED or not dispensed:
        return answer
    dispensed_at = dt.datetime.fromisoformat(dispensed[-1].event_time)
    counter.record(Verification(unit.gtin, unit.serial, place, now))
    places = counter.by_place(
        session, gtin=unit.gtin, serial=unit.serial, since=watch_start(dispensed_at, now, watch)
    )
    suspicion = verified_after_dispense(
        UnitKey(unit.gtin, unit.serial),
        unit.lot,
        dispensed[-1].gln,
        dispensed_at,
        VerifyTally(requests=places.total(), places=len(places)),
        watch=watch,
    )
    if suspicion is not None and suspect_store.is_marked(
        session=session,
        gtin=unit.gtin,
        serial=unit.serial,
        dedup_key=suspicion.finding.dedup_key,
    ):
        suspicion = None  # raised before: the answer already says so
    session.rollback()  # the verify read ends here; flagging is a transaction of its own
    if suspicion is None or not flag_suspects(session=session, suspicions=[suspicion]):
        return answer
    return verify()
