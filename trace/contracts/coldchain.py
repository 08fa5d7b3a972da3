"""The cold-chain rule, and the mean kinetic temperature (USP <1079>) it uses.

The rule (``cold_chain_findings``) judges one unit's temperature history against its
product's profile: the band, the longest excursion allowed, the excursion budget over the
unit's life, the freeze limit and an MKT limit over a window; ``silent_sensor_findings``
reports bound sensors that stopped sending (no data is no proof of cold).

MKT is the single temperature that would cause the same total degradation as a varying
temperature history, under Arrhenius kinetics:

    MKT = (ΔH/R) / ( −ln( Σ wᵢ·e^(−ΔH/(R·Tᵢ)) / Σ wᵢ ) ) − 273.15

with ΔH/R = 10 000 K (ΔH = 83.144 kJ/mol, the value USP <1079> prescribes) and Tᵢ in
kelvin. Readings equally spaced in time take equal weights; otherwise weight each reading by
the duration it represents. Because the exponential weighs warm readings more, MKT is never
below the (weighted) arithmetic mean: a short excursion costs more than its average suggests.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from medtrace.contracts.findings import Finding
from medtrace.models.alerts import AlertKind, Severity

ACTIVATION_OVER_R_KELVIN = 10_000.0
ZERO_CELSIUS_KELVIN = 273.15


def mean_kinetic_temperature(
    readings_c: Sequence[float], weights: Sequence[float] | None = None
) -> float:
    """The MKT in °C of temperatures in °C, equally weighted unless ``weights`` are given.

    Raises ``ValueError`` for no readings, a temperature at or below absolute zero or not
    finite, weights of another length, a negative or non-finite weight, or weights summing
    to zero.
    """
    if not readings_c:
        raise ValueError("mean kinetic temperature needs at least one reading")
    w = [1.0] * len(readings_c) if weights is None else [float(x) for x in weights]
    if len(w) != len(readings_c):
        raise ValueError(f"{len(w)} weights for {len(readings_c)} readings")
    if any(not math.isfinite(x) or x < 0 for x in w) or not math.fsum(w) > 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    kelvin = [t + ZERO_CELSIUS_KELVIN for t in readings_c]
    if any(not math.isfinite(k) or k <= 0 for k in kelvin):
        raise ValueError("temperatures must be finite and above absolute zero")
    exponents = [-ACTIVATION_OVER_R_KELVIN / k for k in kelvin]
    log_mean = _log_weighted_mean_exp(exponents, w)
    return ACTIVATION_OVER_R_KELVIN / -log_mean - ZERO_CELSIUS_KELVIN


def _log_weighted_mean_exp(exponents: Sequence[float], weights: Sequence[float]) -> float:
    """ln(Σ wᵢ·e^xᵢ / Σ wᵢ), shifted by the largest xᵢ so that no term underflows."""
    top = max(x for x, w in zip(exponents, weights, strict=True) if w > 0)
    total = math.fsum(w * math.exp(x - top) for x, w in zip(exponents, weights, strict=True))
    return top + math.log(total / math.fsum(weights))


# --- the cold-chain rule --------------------------------------------------------------------
#
# A reading stands for the time until the next reading of the series, at most ``max_hold``
# (beyond that the series has a gap, which is no evidence either way); the last reading
# stands for no time. An excursion is a run of consecutive readings outside the band, not
# broken by a gap; its duration is the time its readings stand for. So readings every
# 15 minutes at 0, 15 and 30 out of band and at 45 back in band make a 45-minute excursion.


class Reading(Protocol):
    """One reading of a series (``TemperaturePoint`` is one): provable by its leaf."""

    @property
    def time(self) -> dt.datetime: ...
    @property
    def celsius(self) -> float: ...
    @property
    def where(self) -> str: ...
    @property
    def sensor_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def leaf_index(self) -> int: ...


@dataclass(frozen=True)
class ColdChainProfile:
    """The limits a product's temperature history is judged by."""

    low_c: float
    high_c: float
    max_excursion: dt.timedelta
    excursion_budget: dt.timedelta
    freeze_c: float
    max_freeze: dt.timedelta
    mkt_limit_c: float
    mkt_window: dt.timedelta
    max_hold: dt.timedelta
    source: str = "configured defaults"


@dataclass(frozen=True)
class Subject:
    """The unit a series belongs to, and who holds it now (who must act on a breach)."""

    gtin: str
    serial: str
    lot: str
    holder_gln: str


@dataclass(frozen=True)
class _Run:
    """Consecutive readings (indexes ``first..last``) and the time they stand for."""

    first: int
    last: int
    duration: dt.timedelta


#: How many readings an alert's evidence lists (the first ones of the window).
EVIDENCE_READINGS = 50


def _holds(series: Sequence[Reading], max_hold: dt.timedelta) -> list[dt.timedelta]:
    """The time each reading stands for: until the next one, capped at ``max_hold``."""
    spans = [min(b.time - a.time, max_hold) for a, b in itertools.pairwise(series)]
    return [*spans, dt.timedelta(0)] if series else []


def _runs(
    series: Sequence[Reading],
    spans: Sequence[dt.timedelta],
    outside: Callable[[float], bool],
    max_hold: dt.timedelta,
) -> list[_Run]:
    """Maximal runs of readings for which ``outside`` holds, broken by gaps."""
    runs: list[_Run] = []
    first: int | None = None
    for index, reading in enumerate(series):
        if outside(reading.celsius):
            if first is None:
                first = index
            gap_after = index + 1 < len(series) and series[index + 1].time - reading.time > max_hold
            if gap_after or index + 1 == len(series) or not outside(series[index + 1].celsius):
                runs.append(_Run(first, index, sum(spans[first : index + 1], dt.timedelta(0))))
                first = None
    return runs


def _minutes(span: dt.timedelta) -> float:
    return round(span.total_seconds() / 60, 3)


def _window_evidence(series: Sequence[Reading], first: int, last: int) -> dict[str, Any]:
    window = series[first : last + 1]
    return {
        "where": window[0].where,
        "start": window[0].time.isoformat(),
        "end": window[-1].time.isoformat(),
        "lowest_c": min(r.celsius for r in window),
        "highest_c": max(r.celsius for r in window),
        "readings": [
            {
                "time": r.time.isoformat(),
                "celsius": r.celsius,
                "sensor_id": r.sensor_id,
                "seq": r.seq,
                "leaf_index": r.leaf_index,
            }
            for r in window[:EVIDENCE_READINGS]
        ],
        "reading_count": len(window),
    }


def _mkt_of(
    series: Sequence[Reading], spans: Sequence[dt.timedelta], first: int, last: int
) -> float | None:
    weights = [s.total_seconds() for s in spans[first : last + 1]]
    if not sum(weights) > 0:
        return None
    return mean_kinetic_temperature([r.celsius for r in series[first : last + 1]], weights)


def _worst_mkt_window(
    series: Sequence[Reading], spans: Sequence[dt.timedelta], window: dt.timedelta
) -> tuple[int, int, float] | None:
    """The window (first, last, MKT) of length ``window`` with the highest MKT, among the
    windows ending at each reading that the series covers in full."""
    worst: tuple[int, int, float] | None = None
    times = [r.time for r in series]
    for last in range(len(series)):
        if times[last] - times[0] < window:
            continue
        first = bisect.bisect_left(times, times[last] - window)
        # the readings inside the window, each weighted by the time it stands for in it
        mkt = _mkt_of(series, spans, first, last - 1) if last > first else None
        if mkt is not None and (worst is None or mkt > worst[2]):
            worst = (first, last - 1, mkt)
    return worst


def cold_chain_findings(
    series: Sequence[Reading], profile: ColdChainProfile, subject: Subject
) -> list[Finding]:
    """Every way the unit's temperature history breaks its product's profile.

    - ``cold_chain.excursion``: one excursion outside the band longer than ``max_excursion``;
    - ``cold_chain.freeze``: at or below ``freeze_c`` for ``max_freeze`` or longer (never
      excused, however short the band's own limit);
    - ``cold_chain.budget``: excursions adding up to more than ``excursion_budget``;
    - ``cold_chain.mkt``: a window of ``mkt_window`` whose duration-weighted MKT exceeds
      ``mkt_limit_c``.

    ``series`` is in time order. An excursion or freeze is keyed by where and when it began
    and the lot, so every unit of a lot caught in it adds to one finding; the budget and MKT
    are each unit's own. Each finding names the unit in ``quarantine_units``.
    """
    ordered = sorted(series, key=lambda r: (r.time, r.sensor_id, r.seq))
    spans = _holds(ordered, profile.max_hold)
    excursions = _runs(
        ordered, spans, lambda c: not profile.low_c <= c <= profile.high_c, profile.max_hold
    )
    freezes = _runs(ordered, spans, lambda c: c <= profile.freeze_c, profile.max_hold)
    found = [
        _run_finding(ordered, spans, run, subject, profile, "excursion")
        for run in excursions
        if run.duration > profile.max_excursion
    ] + [
        _run_finding(ordered, spans, run, subject, profile, "freeze")
        for run in freezes
        if run.duration >= profile.max_freeze
    ]
    total = sum((run.duration for run in excursions), dt.timedelta(0))
    if total > profile.excursion_budget:
        found.append(_budget_finding(ordered, excursions, total, subject, profile))
    worst = _worst_mkt_window(ordered, spans, profile.mkt_window)
    if worst is not None and worst[2] > profile.mkt_limit_c:
        found.append(_mkt_finding(ordered, worst, subject, profile))
    return found


def _finding(
    rule: str, key: str, message: str, subject: Subject, evidence: dict[str, Any]
) -> Finding:
    return Finding(
        kind=AlertKind.COLD_CHAIN,
        severity=Severity.CRITICAL,
        rule=rule,
        dedup_key=f"{rule}:{key}",
        message=message,
        gln=subject.holder_gln,
        gtin=subject.gtin,
        lot=subject.lot,
        unit_count=1,
        evidence={**evidence, "units": [f"{subject.gtin}/{subject.serial}"]},
        quarantine_units=((subject.gtin, subject.serial),),
    )


def _run_finding(
    series: Sequence[Reading],
    spans: Sequence[dt.timedelta],
    run: _Run,
    subject: Subject,
    profile: ColdChainProfile,
    what: str,
) -> Finding:
    evidence = _window_evidence(series, run.first, run.last)
    mkt = _mkt_of(series, spans, run.first, run.last)
    limit = profile.max_excursion if what == "excursion" else profile.max_freeze
    evidence |= {
        "minutes": _minutes(run.duration),
        "limit_minutes": _minutes(limit),
        "band": [profile.low_c, profile.high_c],
        "freeze_c": profile.freeze_c,
        "mkt_c": None if mkt is None else round(mkt, 3),
        "profile": profile.source,
    }
    if what == "excursion":
        message = (
            f"{_minutes(run.duration):g} min outside {profile.low_c:g}–{profile.high_c:g} °C "
            f"at {evidence['where']} from {evidence['start']} (at most "
            f"{_minutes(limit):g} min allowed; {evidence['lowest_c']:g} to "
            f"{evidence['highest_c']:g} °C): quarantined until QA releases it"
        )
    else:
        message = (
            f"frozen: {_minutes(run.duration):g} min at or below {profile.freeze_c:g} °C at "
            f"{evidence['where']} from {evidence['start']} (lowest {evidence['lowest_c']:g} °C; "
            f"{_minutes(limit):g} min is never excused): quarantined until QA releases it"
        )
    key = f"{evidence['where']}:{evidence['start']}:{subject.gtin}:{subject.lot}"
    return _finding(f"cold_chain.{what}", key, message, subject, evidence)


def _budget_finding(
    series: Sequence[Reading],
    excursions: Sequence[_Run],
    total: dt.timedelta,
    subject: Subject,
    profile: ColdChainProfile,
) -> Finding:
    evidence = {
        "minutes": _minutes(total),
        "limit_minutes": _minutes(profile.excursion_budget),
        "band": [profile.low_c, profile.high_c],
        "excursions": [
            {
                "where": series[run.first].where,
                "start": series[run.first].time.isoformat(),
                "end": series[run.last].time.isoformat(),
                "minutes": _minutes(run.duration),
            }
            for run in excursions
        ],
        "profile": profile.source,
    }
    message = (
        f"unit {subject.serial}: {len(excursions)} excursions outside "
        f"{profile.low_c:g}–{profile.high_c:g} °C add up to {_minutes(total):g} min, over its "
        f"life's budget of {_minutes(profile.excursion_budget):g} min: quarantined until QA "
        "releases it"
    )
    return _finding(
        "cold_chain.budget", f"{subject.gtin}:{subject.serial}", message, subject, evidence
    )


def _mkt_finding(
    series: Sequence[Reading],
    worst: tuple[int, int, float],
    subject: Subject,
    profile: ColdChainProfile,
) -> Finding:
    first, last, mkt = worst
    evidence = _window_evidence(series, first, last) | {
        "mkt_c": round(mkt, 3),
        "limit_c": profile.mkt_limit_c,
        "window_hours": profile.mkt_window.total_seconds() / 3600,
        "profile": profile.source,
    }
    message = (
        f"unit {subject.serial}: mean kinetic temperature {mkt:.2f} °C over "
        f"{evidence['window_hours']:g} h from {evidence['start']}, above the limit of "
        f"{profile.mkt_limit_c:g} °C: quarantined until QA releases it"
    )
    return _finding(
        "cold_chain.mkt", f"{subject.gtin}:{subject.serial}", message, subject, evidence
    )


# --- no data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundSensor:
    """A sensor bound now to a place or shipment, and when it was last heard."""

    sensor_id: str
    owner_gln: str
    target: str
    bound_since: dt.datetime
    last_reading: dt.datetime | None


def silent_sensor_findings(
    sensors: Sequence[BoundSensor], *, now: dt.datetime, max_silence: dt.timedelta
) -> list[Finding]:
    """``cold_chain.no_data``: a bound sensor silent longer than ``max_silence`` (since its
    last reading, or since it was bound if it never sent one). Keyed by that last reading, so
    a sensor that recovers and falls silent again is reported again."""
    found = []
    for sensor in sensors:
        heard = max(sensor.bound_since, sensor.last_reading or sensor.bound_since)
        silence = now - heard
        if silence <= max_silence:
            continue
        found.append(
            Finding(
                kind=AlertKind.SENSOR_SILENT,
                severity=Severity.WARNING,
                rule="cold_chain.no_data",
                dedup_key=f"cold_chain.no_data:{sensor.sensor_id}:{heard.isoformat()}",
                message=(
                    f"sensor {sensor.sensor_id} bound to {sensor.target} has sent nothing for "
                    f"{_minutes(silence):g} min (since {heard.isoformat()}; at most "
                    f"{_minutes(max_silence):g} min allowed): check the logger"
                ),
                gln=sensor.owner_gln,
                evidence={
                    "sensor_id": sensor.sensor_id,
                    "target": sensor.target,
                    "last_reading": None
                    if sensor.last_reading is None
                    else sensor.last_reading.isoformat(),
                    "silent_minutes": _minutes(silence),
                    "limit_minutes": _minutes(max_silence),
                },
            )
        )
    return found
