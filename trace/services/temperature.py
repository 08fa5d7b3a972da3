"""Units' temperature histories: their custody events and the sensors bound where they were.

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
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlmodel import Session

from medtrace.errors import NotFound
from medtrace.models import Event, EventType, as_utc, utcnow
from medtrace.models.iot import BindingKind, SensorGrant
from medtrace.models.lots import Product
from medtrace.schemas.sensors import (
    TemperatureBand,
    TemperatureGap,
    TemperaturePoint,
    TemperaturePublic,
)
from medtrace.store import events as event_store
from medtrace.store import readings as reading_store
from medtrace.store.grant_rows import GrantRow
from medtrace.store.readings import BoundBy

_FINAL_EVENT_TYPES = frozenset(
    {EventType.DISPENSE, EventType.DESTROY, EventType.EXPORT, EventType.DECOMMISSION}
)
_Span = tuple[dt.datetime, dt.datetime]


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
    open: bool = False  # still there: ``end`` is the moment of asking, not an event's time

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
        still_there = index + 1 == len(ordered)
        end = now if still_there else as_utc(ordered[index + 1].event_time)
        if end <= start:
            continue
        if event.type == EventType.SHIP:
            # a case or pallet shipped names its SSCC; a unit shipped loose names none
            ends = frozenset(g for g in (event.gln, event.destination_gln) if g is not None)
            stays.append(_Stay(BindingKind.SHIPMENT, event.sscc, start, end, ends, still_there))
        else:  # where it is kept: the fridge or room of a store event, else the site
            place = event.biz_location or event.gln
            held_by = frozenset({event.gln})
            stays.append(_Stay(BindingKind.PLACE, place, start, end, held_by, still_there))
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
    bound: BoundBy, stay: _Stay, grants: Sequence[GrantRow[SensorGrant]], backdate: dt.timedelta
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
        return [], [_gap(stay, stay.start, stay.end, "no sensor travelled with it")]
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
            gaps.append(_gap(stay, cursor, start, f"no sensor bound to {stay.where}"))
        times = [p.time for p in points if start <= p.time < end]
        for before, after in zip([start, *times], [*times, end], strict=True):
            if after - before > max_gap:
                gaps.append(_gap(stay, before, after, "the sensors bound there sent no readings"))
        cursor = max(cursor, end)
    return points, gaps


def _gap(stay: _Stay, start: dt.datetime, end: dt.datetime, reason: str) -> TemperatureGap:
    """A gap of ``stay``; one that lasts until the moment of asking is open (no ``end``), so
    a history, and a verify answer, stays the same bytes until something is recorded."""
    still_open = stay.open and end >= stay.end
    return TemperatureGap(
        start=start, end=None if still_open else end, where=stay.where, reason=reason
    )


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
