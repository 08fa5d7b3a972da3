"""The simulated loggers behave like the real ones they stand for."""

from __future__ import annotations

import datetime as dt
import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.iot.simulator import Profile, SimulatedSensor, profile_temperature
from medtrace.protocol.readings import SignedReading

MINUTE = 60.0


def _series(profile: Profile, minutes: range) -> list[float | None]:
    rng = random.Random(1)
    return [profile_temperature(profile, m * MINUTE, rng) for m in minutes]


def test_a_fridge_cycles_between_3_and_7_degrees() -> None:
    values = [v for v in _series(Profile.FRIDGE, range(0, 120)) if v is not None]
    assert len(values) == 120
    assert 2.7 < min(values) < 3.3 and 6.7 < max(values) < 7.3


def test_an_excursion_leaves_the_2_to_8_band_and_comes_back() -> None:
    values = [v for v in _series(Profile.EXCURSION, range(0, 40)) if v is not None]
    assert max(values) > 10
    assert 2 <= values[-1] <= 8 and 2 <= values[0] <= 8


def test_a_freeze_goes_below_zero() -> None:
    values = [v for v in _series(Profile.FREEZE, range(0, 30)) if v is not None]
    assert values[0] > 2 and min(values) < 0


def test_a_silent_logger_stops_sending() -> None:
    values = _series(Profile.SILENT, range(0, 20))
    assert all(v is not None for v in values[:10]) and all(v is None for v in values[10:])


def test_a_truck_stays_cold_with_road_noise() -> None:
    values = [v for v in _series(Profile.TRUCK, range(0, 120)) if v is not None]
    assert all(2 < v < 8 for v in values)
    assert len({round(v, 2) for v in values}) > 60


def test_readings_are_valid_and_their_sequence_increases() -> None:
    sensor = SimulatedSensor("fridge-1", Ed25519PrivateKey.generate(), Profile.FRIDGE)
    now = dt.datetime.now(dt.UTC)
    first, second = sensor.reading(now, 0), sensor.reading(now, 1)
    assert first is not None and second is not None
    assert second["seq"] == first["seq"] + 1
    assert SignedReading.model_validate(first).taken_at == now.replace(
        microsecond=now.microsecond // 1000 * 1000
    )
