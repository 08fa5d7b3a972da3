"""The cold-chain rule over every unit still in circulation, and the sensor-silence rule.

Each unit's temperature history (``services.temperature.unit_temperature``: the readings of the
sensors bound to every place and shipment it passed) is judged against its product's profile:
the band and limits its latest lot record gave, the settings' for those it did not. The units
of one lot caught in the same excursion make one alert; every unit a new alert names is
quarantined in the same transaction, until its holder's QA signs a ``release`` event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlmodel import Session, col, select

from medtrace.contracts.coldchain import (
    BoundSensor,
    ColdChainProfile,
    Subject,
    cold_chain_findings,
    silent_sensor_findings,
)
from medtrace.contracts.findings import Finding
from medtrace.custody import FINAL_STATES
from medtrace.models import Unit, as_utc
from medtrace.models.lots import ProductColdChain
from medtrace.schemas.alerts import AlertPublic
from medtrace.services.alerts import record_findings
from medtrace.services.bindings import may_bind
from medtrace.services.temperature import TemperaturePolicy, policy_for_product, unit_temperature
from medtrace.store import events as event_store
from medtrace.store import readings as reading_store


@dataclass(frozen=True)
class ColdChainLimits:
    """The limits of a profile that lot records do not give (from the settings)."""

    max_excursion: dt.timedelta
    excursion_budget: dt.timedelta
    freeze_c: float
    max_freeze: dt.timedelta
    mkt_limit_c: float
    mkt_window: dt.timedelta
    max_silence: dt.timedelta


def profile_for(
    policy: TemperaturePolicy, limits: ColdChainLimits, given: ProductColdChain | None = None
) -> ColdChainProfile:
    """A product's profile: its band (lot record or default), and each limit its lot record
    gave (``given``), the configured one otherwise."""
    own = {  # in the order the fields are declared, whatever order the row was loaded in
        name: value
        for name in ProductColdChain.model_fields
        if name not in {"gtin", "updated_at"} and (value := getattr(given, name, None)) is not None
    }

    def minutes(name: str, default: dt.timedelta) -> dt.timedelta:
        return dt.timedelta(minutes=own[name]) if name in own else default

    return ColdChainProfile(
        low_c=policy.band.min_c,
        high_c=policy.band.max_c,
        max_excursion=minutes("max_excursion_minutes", limits.max_excursion),
        excursion_budget=minutes("excursion_budget_minutes", limits.excursion_budget),
        freeze_c=own.get("freeze_c", limits.freeze_c),
        max_freeze=minutes("max_freeze_minutes", limits.max_freeze),
        mkt_limit_c=own.get("mkt_limit_c", limits.mkt_limit_c),
        mkt_window=dt.timedelta(hours=own["mkt_window_hours"])
        if "mkt_window_hours" in own
        else limits.mkt_window,
        max_hold=policy.max_gap,
        source=policy.band.source
        + (f"; {', '.join(own)} from its lot record" if own else "; limits from the settings"),
    )


def cold_chain_scan(
    *, session: Session, now: dt.datetime, default: TemperaturePolicy, limits: ColdChainLimits
) -> list[Finding]:
    """What the cold-chain and sensor-silence rules find now (reads only)."""
    units = session.exec(
        select(Unit)
        .where(col(Unit.state).not_in(list(FINAL_STATES)))
        .order_by(col(Unit.gtin), col(Unit.serial))
    ).all()
    profiles: dict[str, tuple[TemperaturePolicy, ColdChainProfile]] = {}
    findings: list[Finding] = []
    for unit in units:
        if unit.gtin not in profiles:
            policy = policy_for_product(session=session, gtin=unit.gtin, default=default)
            given = session.get(ProductColdChain, unit.gtin)
            profiles[unit.gtin] = (policy, profile_for(policy, limits, given))
        policy, profile = profiles[unit.gtin]
        events = event_store.get_unit_events(session=session, gtin=unit.gtin, serial=unit.serial)
        history = unit_temperature(session=session, events=events, policy=policy, now=now)
        subject = Subject(unit.gtin, unit.serial, unit.lot, unit.holder_gln)
        findings.extend(cold_chain_findings(history.series, profile, subject))
    sensors = [  # a binding no longer authorised (a revoked grant) is watched by no one
        BoundSensor(
            sensor_id=binding.sensor_id,
            owner_gln=owner.gln,
            target=binding.target,
            bound_since=as_utc(binding.valid_from),
            last_reading=None if last is None else as_utc(last),
        )
        for binding, owner, last in reading_store.bindings_in_force(session=session, at=now)
        if may_bind(session, owner, binding.kind, binding.target)
    ]
    findings.extend(silent_sensor_findings(sensors, now=now, max_silence=limits.max_silence))
    return merge_findings(findings)


#: How many units an alert's evidence names; all of them are held (``unit_holds``).
EVIDENCE_UNITS = 1000


def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per ``dedup_key``: the units of one lot in one excursion add up (the
    evidence names the first ``EVIDENCE_UNITS``; every one of them is quarantined)."""
    merged: dict[str, Finding] = {}
    for finding in findings:
        first = merged.get(finding.dedup_key)
        if first is None:
            merged[finding.dedup_key] = finding
            continue
        units = [*first.evidence.get("units", []), *finding.evidence.get("units", [])]
        merged[finding.dedup_key] = replace(
            first,
            unit_count=first.unit_count + finding.unit_count,
            evidence=first.evidence | {"units": units[:EVIDENCE_UNITS]},
            quarantine_units=first.quarantine_units + finding.quarantine_units,
        )
    return list(merged.values())


def check_cold_chain(
    *, session: Session, now: dt.datetime, default: TemperaturePolicy, limits: ColdChainLimits
) -> list[AlertPublic]:
    """Raise the cold-chain and sensor-silence alerts not raised before, quarantining the
    units each new cold-chain alert names."""
    findings = cold_chain_scan(session=session, now=now, default=default, limits=limits)
    session.rollback()  # the read ends here; recording opens its own transaction
    return record_findings(session=session, findings=findings)
