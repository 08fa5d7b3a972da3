"""Suspect patterns: what counterfeit and diversion look like in custody data.

The patterns the EU's medicines verification system (EMVS) raises alerts on, each a small pure
function from what the service saw to a ``Suspicion`` (an alert to raise, and the units to
mark ``suspect`` in the verify verdict), or None:

- ``suspect.never_commissioned``: a station presented a serial that was never commissioned
  (the move itself is refused; the attempt is evidence of a fake pack in the chain);
- ``suspect.after_dispense``: a dispensed pack presented again (dispensed or received again:
  its code was copied onto another pack, or the pack re-entered the chain);
- ``suspect.not_shipped_to_you``: a receipt of what was shipped elsewhere (accepted only when
  the receipt policy says ``flag_suspect``);
- ``suspect.verified_after_dispense``: a dispensed pack's public page verified many times
  from many places (a printed code copied onto fakes, each buyer checking it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from medtrace.contracts.findings import Finding
from medtrace.custody import ContainerKey, Custody, Diversion, UnitKey, key_of
from medtrace.models import EventType, UnitState
from medtrace.models.alerts import AlertKind, Severity
from medtrace.schemas import SignedEvent

#: Presenting a dispensed pack again in one of these is a sign of a copied code.
_PRESENTATIONS = frozenset({EventType.DISPENSE, EventType.RECEIVE})


@dataclass(frozen=True)
class Suspicion:
    """An alert to raise and the units it marks suspect (none when no unit exists)."""

    finding: Finding
    units: tuple[UnitKey, ...] = ()


@dataclass(frozen=True)
class Presenter:
    """The participant whose station presented the code."""

    gln: str
    name: str


def on_refusal(
    event: SignedEvent, rule: str, current: Custody | None, presenter: Presenter
) -> Suspicion | None:
    """The suspicion a refused event reveals, if any: ``current`` is the custody of the
    object the event names, as it stood when the event was refused."""
    target = key_of(event)
    if not isinstance(target, UnitKey):
        return None
    if rule == "custody.unknown_unit" and current is None:
        return _never_commissioned(target, event, presenter)
    if (
        rule == "custody.final_state"
        and current is not None
        and current.state is UnitState.DISPENSED
        and event.type in _PRESENTATIONS
    ):
        return _after_dispense(target, event, current, presenter)
    return None


def _never_commissioned(target: UnitKey, event: SignedEvent, presenter: Presenter) -> Suspicion:
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.CRITICAL,
            rule="suspect.never_commissioned",
            dedup_key=f"suspect.never_commissioned:{target.gtin}:{target.serial}:{presenter.gln}",
            message=(
                f"{presenter.name} ({presenter.gln}) presented serial {target.serial} of GTIN "
                f"{target.gtin} for {event.type}, but it was never commissioned: quarantine "
                "the pack, it may be counterfeit"
            ),
            gln=presenter.gln,
            gtin=target.gtin,
            lot=event.lot,
            unit_count=1,
            evidence={
                "serial": target.serial,
                "event_type": event.type.value,
                "presented_by": presenter.gln,
                "event_time": event.event_time.isoformat(),
            },
        )
    )


def _after_dispense(
    target: UnitKey, event: SignedEvent, current: Custody, presenter: Presenter
) -> Suspicion:
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.CRITICAL,
            rule="suspect.after_dispense",
            dedup_key=(
                f"suspect.after_dispense:{target.gtin}:{target.serial}:{presenter.gln}:{event.type}"
            ),
            message=(
                f"{presenter.name} ({presenter.gln}) presented {target} for {event.type}, but "
                f"it was dispensed by {current.holder_gln}: its code may have been copied"
            ),
            gln=presenter.gln,
            gtin=target.gtin,
            lot=current.lot,
            unit_count=1,
            evidence={
                "serial": target.serial,
                "event_type": event.type.value,
                "presented_by": presenter.gln,
                "dispensed_by": current.holder_gln,
                "event_time": event.event_time.isoformat(),
            },
        ),
        units=(target,),
    )


def diverted_receipt(
    diversion: Diversion, units: Sequence[UnitKey], lots: Sequence[tuple[str, str]]
) -> Suspicion:
    """A receipt the ``flag_suspect`` policy accepted: every unit it moved is suspect.
    ``lots`` are the (GTIN, lot) pairs of those units; the alert names the first."""
    target = diversion.target
    expected = (
        f"it was shipped to {diversion.expected_gln}"
        if diversion.expected_gln
        else f"it was not shipped at all ({diversion.previous_holder_gln} held it)"
    )
    ident = target.sscc if isinstance(target, ContainerKey) else f"{target.gtin}:{target.serial}"
    gtin, lot = lots[0] if lots else (None, None)
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.WARNING,
            rule="suspect.not_shipped_to_you",
            dedup_key=f"suspect.not_shipped_to_you:{ident}:{diversion.receiver_gln}",
            message=(
                f"{diversion.receiver_gln} received {target} ({len(units)} units), but {expected}:"
                " accepted under the flag_suspect receipt policy; investigate a diversion"
            ),
            gln=diversion.receiver_gln,
            gtin=gtin,
            lot=lot,
            unit_count=len(units),
            evidence={
                "received_by": diversion.receiver_gln,
                "shipped_to": diversion.expected_gln,
                "previous_holder": diversion.previous_holder_gln,
                "serials": [u.serial for u in units[:100]],
            },
        ),
        units=tuple(units),
    )


@dataclass(frozen=True)
class VerifyWatch:
    """When public verifications of a dispensed pack become suspect: at least
    ``max_requests`` requests from at least ``min_places`` distinct places within
    ``window``."""

    max_requests: int
    min_places: int
    window: dt.timedelta


@dataclass(frozen=True)
class VerifyHit:
    """One public verification: when, and from which (hashed) place."""

    at: dt.datetime
    place_hash: str


def verified_after_dispense(
    unit: UnitKey,
    lot: str,
    dispensed_by: str,
    dispensed_at: dt.datetime,
    hits: Sequence[VerifyHit],
    *,
    now: dt.datetime,
    watch: VerifyWatch,
) -> Suspicion | None:
    """A suspicion when the verifications since dispense, within the window ending ``now``,
    reach the watch's thresholds; None otherwise. Raised once per unit (its dedup key)."""
    since = max(dispensed_at, now - watch.window)
    recent = [h for h in hits if h.at >= since]
    places = {h.place_hash for h in recent}
    if len(recent) < watch.max_requests or len(places) < watch.min_places:
        return None
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.WARNING,
            rule="suspect.verified_after_dispense",
            dedup_key=f"suspect.verified_after_dispense:{unit.gtin}:{unit.serial}",
            message=(
                f"{unit} was dispensed on {dispensed_at.date()}, then its public page was "
                f"verified {len(recent)} times from {len(places)} places: its code may have "
                "been copied onto other packs"
            ),
            gln=dispensed_by,
            gtin=unit.gtin,
            lot=lot,
            unit_count=1,
            evidence={
                "serial": unit.serial,
                "dispensed_at": dispensed_at.isoformat(),
                "requests": len(recent),
                "places": len(places),
                "window_seconds": int(watch.window.total_seconds()),
            },
        ),
        units=(unit,),
    )
