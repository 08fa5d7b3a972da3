"""The cold-chain rule on its own: worked examples computed by hand, and the profile a lot
record gives."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pytest

from medtrace.contracts.coldchain import (
    BoundSensor,
    ColdChainProfile,
    Subject,
    cold_chain_findings,
    silent_sensor_findings,
)
from medtrace.models.alerts import AlertKind, Severity
from medtrace.models.lots import ProductColdChain
from medtrace.schemas.sensors import TemperatureBand
from medtrace.services.coldchain import ColdChainLimits, profile_for
from medtrace.services.temperature import TemperaturePolicy

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
FRIDGE = "9521234000013"
UNIT = Subject(gtin="09521234000112", serial="S1", lot="L1", holder_gln="9525678000004")
PROFILE = ColdChainProfile(
    low_c=2.0,
    high_c=8.0,
    max_excursion=60 * MINUTE,
    excursion_budget=120 * MINUTE,
    freeze_c=-0.5,
    max_freeze=60 * MINUTE,
    mkt_limit_c=8.0,
    mkt_window=dt.timedelta(hours=24),
    max_hold=30 * MINUTE,
)


@dataclass(frozen=True)
class Point:
    time: dt.datetime
    celsius: float
    where: str = FRIDGE
    sensor_id: str = "fridge-1"
    seq: int = 0
    leaf_index: int = 0


def every_15_min(*celsius: float, start: dt.datetime = T0) -> list[Point]:
    return [
        Point(start + 15 * i * MINUTE, c, seq=i, leaf_index=100 + i) for i, c in enumerate(celsius)
    ]


def rules(series: list[Point], profile: ColdChainProfile = PROFILE) -> list[str]:
    return [f.rule for f in cold_chain_findings(series, profile, UNIT)]


def test_a_45_minute_excursion_is_allowed() -> None:
    # out of band at 0:15, 0:30, 0:45; back at 1:00: three readings of 15 min each = 45 min
    assert rules(every_15_min(5, 12, 14, 11, 5, 5)) == []


def test_a_75_minute_excursion_breaches_and_names_its_evidence() -> None:
    # out of band at 0:15 … 1:15 (five readings × 15 min = 75 min > 60), back at 1:30
    series = every_15_min(5, 12, 14, 15, 11, 9, 5, 5)
    [finding] = cold_chain_findings(series, PROFILE, UNIT)
    assert (finding.kind, finding.severity, finding.rule) == (
        AlertKind.COLD_CHAIN,
        Severity.CRITICAL,
        "cold_chain.excursion",
    )
    evidence = finding.evidence
    assert (evidence["minutes"], evidence["limit_minutes"]) == (75, 60)
    assert (evidence["lowest_c"], evidence["highest_c"]) == (9, 15)
    assert evidence["start"] == (T0 + 15 * MINUTE).isoformat()
    assert [r["leaf_index"] for r in evidence["readings"]] == [101, 102, 103, 104, 105]
    # five equal 15-minute weights: e^(−10000/T) of 12, 14, 15, 11, 9 °C are 5.8832, 7.5109,
    # 8.4758, 5.2001, 4.0520 (×1e−16); mean 6.2244e−16; −ln = 35.01288; 10000/35.01288 − 273.15
    assert evidence["mkt_c"] == pytest.approx(12.459, abs=1e-3)
    assert finding.quarantine_units == ((UNIT.gtin, UNIT.serial),)
    assert finding.dedup_key == (
        f"cold_chain.excursion:{FRIDGE}:{(T0 + 15 * MINUTE).isoformat()}:{UNIT.gtin}:{UNIT.lot}"
    )
    assert "75 min outside 2–8 °C" in finding.message


def test_a_gap_in_the_readings_ends_an_excursion_and_counts_no_time() -> None:
    # 12 °C at 0:00 then nothing for 3 h (the reading stands for max_hold = 30 min), then
    # 12 °C for 45 min: two excursions of 30 and 45 min, neither over 60
    series = [Point(T0, 12.0), *every_15_min(12, 12, 12, 5, start=T0 + 3 * 60 * MINUTE)]
    assert rules(series) == []


def test_a_freeze_of_an_hour_is_never_excused() -> None:
    # −1 °C for 4 × 15 = 60 min: a freeze (≥ 60 min at or below −0.5 °C); as an excursion
    # it is exactly 60 min, which alone would be allowed
    assert rules(every_15_min(4, -1, -1, -1, -1, 4)) == ["cold_chain.freeze"]
    # −0.4 °C is cold but not frozen: only the band counts, and 60 min is allowed
    assert rules(every_15_min(4, -0.4, -0.4, -0.4, -0.4, 4)) == []


def test_excursions_that_each_pass_can_exhaust_the_life_budget() -> None:
    # three excursions of 45 min (each allowed): 135 min > the 120-min budget
    day = every_15_min(5, 10, 10, 10, 5, 5, 10, 10, 10, 5, 5, 10, 10, 10, 5)
    [finding] = cold_chain_findings(day, PROFILE, UNIT)
    assert finding.rule == "cold_chain.budget"
    assert (finding.evidence["minutes"], finding.evidence["limit_minutes"]) == (135, 120)
    assert [e["minutes"] for e in finding.evidence["excursions"]] == [45, 45, 45]
    assert finding.dedup_key == f"cold_chain.budget:{UNIT.gtin}:{UNIT.serial}"
    # two of them stay within it
    assert rules(day[:10]) == []


def hourly(*celsius: float) -> list[Point]:
    return [Point(T0 + i * 60 * MINUTE, c, seq=i) for i, c in enumerate(celsius)]


def test_mkt_over_a_day_breaches_even_inside_the_band() -> None:
    # 12 h at 4 °C then 12 h at 8 °C (readings hourly, the 25th closes the day): all in band.
    # MKT = 10000 / −ln((e^(−10000/277.15) + e^(−10000/281.15)) / 2) − 273.15 = 6.2398 °C
    day = hourly(*([4.0] * 12 + [8.0] * 12 + [8.0]))
    strict = replace(PROFILE, mkt_limit_c=6.0, max_hold=90 * MINUTE)
    [finding] = cold_chain_findings(day, strict, UNIT)
    assert finding.rule == "cold_chain.mkt"
    assert finding.evidence["mkt_c"] == pytest.approx(6.240, abs=1e-3)
    assert finding.evidence["window_hours"] == 24
    assert rules(day, replace(strict, mkt_limit_c=6.25)) == []
    # less than a full window: no MKT judged yet
    assert rules(day[:24], strict) == []


def test_the_sensor_silence_rule() -> None:
    now = T0 + 3 * 60 * MINUTE
    sensors = [
        BoundSensor("quiet", "9521234000006", FRIDGE, T0, T0 + 100 * MINUTE),  # 80 min silent
        BoundSensor("fine", "9521234000006", FRIDGE, T0, T0 + 150 * MINUTE),  # 30 min
        BoundSensor("never", "9521234000006", FRIDGE, T0 + 90 * MINUTE, None),  # 90 min
        BoundSensor("new", "9521234000006", FRIDGE, T0 + 170 * MINUTE, None),  # 10 min
    ]
    found = silent_sensor_findings(sensors, now=now, max_silence=60 * MINUTE)
    assert [(f.evidence["sensor_id"], f.evidence["silent_minutes"]) for f in found] == [
        ("quiet", 80),
        ("never", 90),
    ]
    assert {f.kind for f in found} == {AlertKind.SENSOR_SILENT}
    assert found[0].dedup_key == f"cold_chain.no_data:quiet:{(T0 + 100 * MINUTE).isoformat()}"


def test_a_lot_records_limits_take_the_place_of_the_settings() -> None:
    policy = TemperaturePolicy(
        band=TemperatureBand(min_c=2.0, max_c=8.0, source="storage profile of X"),
        max_gap=30 * MINUTE,
        binding_backdate=dt.timedelta(days=1),
    )
    limits = ColdChainLimits(
        max_excursion=60 * MINUTE,
        excursion_budget=120 * MINUTE,
        freeze_c=-0.5,
        max_freeze=60 * MINUTE,
        mkt_limit_c=8.0,
        mkt_window=dt.timedelta(hours=24),
        max_silence=60 * MINUTE,
    )
    assert profile_for(policy, limits) == replace(
        PROFILE, source="storage profile of X; limits from the settings"
    )
    given = ProductColdChain(gtin=UNIT.gtin, max_excursion_minutes=30, freeze_c=0.0)
    own = profile_for(policy, limits, given)
    assert (own.max_excursion, own.freeze_c, own.max_freeze) == (30 * MINUTE, 0.0, 60 * MINUTE)
    assert own.source.endswith("max_excursion_minutes, freeze_c from its lot record")
    # the 45-minute excursion that the settings allow breaches this product's 30 minutes
    assert rules(every_15_min(5, 12, 14, 11, 5, 5), own) == ["cold_chain.excursion"]
