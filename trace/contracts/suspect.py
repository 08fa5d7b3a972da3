"""Suspect patterns: what counterfeit and diversion look like in custody data.

The patterns the EU's medicines verification system (EMVS) raises alerts on, each a small pure
function from what the service saw to a ``Suspicion`` (an alert to raise, and the units to
mark ``suspect`` in the verify verdict), or None:

- ``suspect.never_commissioned``: a station presented a serial that was never commissioned
  (the move itself is refused; the attempt is evidence of a fake pack in the chain);
- ``suspect.after_dispense``: a dispensed pack presented again (dispensed or received again:
  its code was copied onto another pack, or the pack re-entered the chain);
- ``suspect.clone``: a station presented, for a move that needs holding it, a serial that
  sits in another participant's stock (the same serial active in two places; the move is
  refused);
- ``suspect.not_shipped_to_you``: a receipt of what was shipped elsewhere (accepted only when
  the receipt policy says ``flag_suspect``);
- ``suspect.impossible_transit``: a receipt stamped before its shipment, or sooner after it
  than goods can travel between two sites (the receipt is accepted: the goods are there);
- ``suspect.verified_after_dispense``: a dispensed pack's public page verified many times
  from many places (a printed code copied onto fakes, each buyer checking it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from medtrace.contracts.findings import Finding
from medtrace.custody import (
    FINAL_STATES,
    MOVING_STATES,
    ContainerKey,
    Custody,
    Diversion,
    Key,
    UnitKey,
    key_of,
)
from medtrace.models import EventType, UnitState
from medtrace.models.alerts import AlertKind, Severity
from medtrace.schemas.capture import SignedEvent

#: Presenting a dispensed pack again in one of these is a sign of a copied code.
_PRESENTATIONS = frozenset({EventType.DISPENSE, EventType.RECEIVE})
#: The refusals of a move that needs holding the unit (or, for a receipt, its being on its
#: way to the receiver), and of presenting on its own a unit that is packed in a case.
_NOT_HELD = frozenset({"custody.not_holder", "custody.not_shipped_to_you", "custody.packed"})


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
    if rule in _NOT_HELD and current is not None and _in_stock_elsewhere(current, presenter):
        return _clone(target, event, current, presenter)
    return None


def _in_stock_elsewhere(current: Custody, presenter: Presenter) -> bool:
    """Whether the unit sits in another participant's stock, so that the presenter's pack is
    a second one with the same serial.

    Only then, to spare honest mistakes: a unit on the road (``MOVING_STATES``) is in no
    one's hands, and presenting it early is a slip (a distributor shipping on what it has not
    scanned in yet, a pharmacy dispensing before its receipt scan); a unit in a final state is
    ``suspect.after_dispense`` (dispensed) or an ordinary refusal (destroyed, exported); and a
    participant presenting its own stock at the wrong step (a packed unit dispensed alone, a
    receipt of what it holds) is a mistake, not a copy. A receipt of stock the sender never
    scanned out stays suspect: in the data it cannot be told from a clone, and the alert is
    what makes both sites look.
    """
    return (
        current.holder_gln != presenter.gln
        and current.state not in MOVING_STATES
        and current.state not in FINAL_STATES
    )


def _never_commissioned(target: UnitKey, event: SignedEvent, presenter: Presenter) -> Suspicion:
    return _presented(
        "suspect.never_commissioned",
        target,
        event,
        presenter,
        lot=event.lot,
        message=(
            f"{presenter.name} ({presenter.gln}) presented serial {target.serial} of GTIN "
            f"{target.gtin} for {event.type}, but it was never commissioned: quarantine "
            "the pack, it may be counterfeit"
        ),
        marks_unit=False,  # there is no unit to mark
    )


def _after_dispense(
    target: UnitKey, event: SignedEvent, current: Custody, presenter: Presenter
) -> Suspicion:
    return _presented(
        "suspect.after_dispense",
        target,
        event,
        presenter,
        lot=current.lot,
        message=(
            f"{presenter.name} ({presenter.gln}) presented {target} for {event.type}, but "
            f"it was dispensed by {current.holder_gln}: its code may have been copied"
        ),
        evidence={"dispensed_by": current.holder_gln},
        dedup_suffix=f":{event.type}",
    )


def _clone(
    target: UnitKey, event: SignedEvent, current: Custody, presenter: Presenter
) -> Suspicion:
    return _presented(
        "suspect.clone",
        target,
        event,
        presenter,
        lot=current.lot,
        message=(
            f"{presenter.name} ({presenter.gln}) presented serial {target.serial} of GTIN "
            f"{target.gtin} for {event.type}, but {current.holder_gln} holds it "
            f"({current.state}): the same serial is active in two places, one pack may be "
            "a clone"
        ),
        evidence={
            "presenter_name": presenter.name,
            "held_by": current.holder_gln,
            "held_state": current.state.value,
        },
    )


def _presented(
    rule: str,
    target: UnitKey,
    event: SignedEvent,
    presenter: Presenter,
    *,
    lot: str | None,
    message: str,
    evidence: dict[str, object] | None = None,
    dedup_suffix: str = "",
    marks_unit: bool = True,
) -> Suspicion:
    """A critical suspicion about one serial a station presented: about the presenter's place,
    with what was presented, by whom and when; it marks the unit unless ``marks_unit`` is
    False."""
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.CRITICAL,
            rule=rule,
            dedup_key=f"{rule}:{target.gtin}:{target.serial}:{presenter.gln}{dedup_suffix}",
            message=message,
            gln=presenter.gln,
            gtin=target.gtin,
            lot=lot,
            unit_count=1,
            evidence={
                "serial": target.serial,
                "event_type": event.type.value,
                "presented_by": presenter.gln,
                **(evidence or {}),
                "event_time": event.event_time.isoformat(),
            },
        ),
        units=(target,) if marks_unit else (),
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
    return _receipt_suspicion(
        "suspect.not_shipped_to_you",
        target,
        diversion.receiver_gln,
        units,
        lots,
        message=(
            f"{diversion.receiver_gln} received {target} ({len(units)} units), but {expected}:"
            " accepted under the flag_suspect receipt policy; investigate a diversion"
        ),
        evidence={
            "received_by": diversion.receiver_gln,
            "shipped_to": diversion.expected_gln,
            "previous_holder": diversion.previous_holder_gln,
        },
    )


def _receipt_suspicion(
    rule: str,
    target: Key,
    receiver_gln: str,
    units: Sequence[UnitKey],
    lots: Sequence[tuple[str, str]],
    *,
    message: str,
    evidence: dict[str, object],
) -> Suspicion:
    """An accepted receipt under suspicion: a warning about the receiver's place, naming the
    first (GTIN, lot) of ``lots`` and up to 100 serials, and every unit it moved."""
    ident = target.sscc if isinstance(target, ContainerKey) else f"{target.gtin}:{target.serial}"
    gtin, lot = lots[0] if lots else (None, None)
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.WARNING,
            rule=rule,
            dedup_key=f"{rule}:{ident}:{receiver_gln}",
            message=message,
            gln=receiver_gln,
            gtin=gtin,
            lot=lot,
            unit_count=len(units),
            evidence={**evidence, "serials": [u.serial for u in units[:100]]},
        ),
        units=tuple(units),
    )


@dataclass(frozen=True)
class Transit:
    """A receipt of an object that was on its way: who shipped it and when, who received it
    and when (each as its station stamped it)."""

    target: Key
    sender_gln: str
    shipped_at: dt.datetime
    receiver_gln: str
    received_at: dt.datetime


def impossible_transit(
    transit: Transit,
    units: Sequence[UnitKey],
    lots: Sequence[tuple[str, str]],
    *,
    min_transit: dt.timedelta,
) -> Suspicion | None:
    """A suspicion when the receipt is stamped before the shipment, or (between two different
    sites) less than ``min_transit`` after it; None otherwise. ``lots`` are the (GTIN, lot)
    pairs of ``units``; the alert names the first.

    A receipt before its shipment is impossible for the same goods: either clock is wrong, or
    the pack received is another one carrying the shipped code. A receipt sooner than any
    transport could bring it is the same sign, within the minimum a deployment sets.
    """
    elapsed = transit.received_at - transit.shipped_at
    different_sites = transit.sender_gln != transit.receiver_gln
    if elapsed >= dt.timedelta(0) and (not different_sites or elapsed >= min_transit):
        return None
    how = (
        "before it was shipped"
        if elapsed < dt.timedelta(0)
        else f"{int(elapsed.total_seconds())} s after it was shipped (the minimum transit is "
        f"{int(min_transit.total_seconds())} s)"
    )
    return _receipt_suspicion(
        "suspect.impossible_transit",
        transit.target,
        transit.receiver_gln,
        units,
        lots,
        message=(
            f"{transit.receiver_gln} received {transit.target} ({len(units)} units) {how} by "
            f"{transit.sender_gln}: check both stations' clocks, or the goods may not be "
            "the ones shipped"
        ),
        evidence={
            "shipped_by": transit.sender_gln,
            "shipped_at": transit.shipped_at.isoformat(),
            "received_by": transit.receiver_gln,
            "received_at": transit.received_at.isoformat(),
            "min_transit_seconds": int(min_transit.total_seconds()),
        },
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
class VerifyTally:
    """A dispensed pack's public verifications since ``watch_start``: how many requests, and
    from how many distinct (hashed) places."""

    requests: int
    places: int


def watch_start(dispensed_at: dt.datetime, now: dt.datetime, watch: VerifyWatch) -> dt.datetime:
    """Where the count of verifications starts: the later of the dispense and the start of the
    window ending ``now`` (a verification before the dispense is the pharmacy's own check)."""
    return max(dispensed_at, now - watch.window)


def verified_after_dispense(
    unit: UnitKey,
    lot: str,
    dispensed_by: str,
    dispensed_at: dt.datetime,
    tally: VerifyTally,
    *,
    watch: VerifyWatch,
) -> Suspicion | None:
    """A suspicion when the verifications counted since ``watch_start`` reach the watch's
    thresholds; None otherwise. Raised once per unit (its dedup key)."""
    if tally.requests < watch.max_requests or tally.places < watch.min_places:
        return None
    return Suspicion(
        Finding(
            kind=AlertKind.SUSPECT,
            severity=Severity.WARNING,
            rule="suspect.verified_after_dispense",
            dedup_key=f"suspect.verified_after_dispense:{unit.gtin}:{unit.serial}",
            message=(
                f"{unit} was dispensed on {dispensed_at.date()}, then its public page was "
                f"verified {tally.requests} times from {tally.places} places: its code may have "
                "been copied onto other packs"
            ),
            gln=dispensed_by,
            gtin=unit.gtin,
            lot=lot,
            unit_count=1,
            evidence={
                "serial": unit.serial,
                "dispensed_at": dispensed_at.isoformat(),
                "requests": tally.requests,
                "places": tally.places,
                "window_seconds": int(watch.window.total_seconds()),
            },
        ),
        units=(unit,),
    )
