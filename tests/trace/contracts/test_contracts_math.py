"""Mean kinetic temperature and reorder plans: worked examples and properties."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medtrace.contracts import mean_kinetic_temperature, reorder_plan

# --- mean kinetic temperature ---------------------------------------------------------------


def test_mkt_worked_example_three_readings() -> None:
    # T = 293.15 K, 298.15 K, 303.15 K; ΔH/R = 10 000 K.
    # e^(−10000/T): 1.5319588e-15, 2.7145116e-15, 4.7199880e-15 (40-digit decimal arithmetic)
    # mean = 2.9888195e-15; −ln(mean) = 33.44358…; 10000 / 33.44358 = 299.00821 K
    # MKT = 299.00821 − 273.15 = 25.858 °C, above the arithmetic mean of 25 °C.
    assert mean_kinetic_temperature([20.0, 25.0, 30.0]) == pytest.approx(25.8582084281, abs=1e-9)


def test_mkt_one_warm_hour_in_a_fridge_day_costs_more_than_its_average() -> None:
    # 23 h at 4 °C and 1 h at 20 °C, weighted by duration: the mean is 4.67 °C, MKT 5.77 °C.
    assert mean_kinetic_temperature([4.0, 20.0], weights=[23, 1]) == pytest.approx(
        5.7675402672, abs=1e-9
    )
    assert mean_kinetic_temperature([5.0] * 5 + [25.0]) == pytest.approx(12.8788226991, abs=1e-9)


@pytest.mark.parametrize(
    ("readings", "weights", "problem"),
    [
        ([], None, "at least one"),
        ([5.0, 6.0], [1.0], "2 readings"),
        ([5.0], [-1.0], "non-negative"),
        ([5.0, 6.0], [0.0, 0.0], "not all zero"),
        ([-300.0], None, "absolute zero"),
        ([math.nan], None, "finite"),
    ],
)
def test_mkt_refuses_meaningless_input(
    readings: list[float], weights: list[float] | None, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        mean_kinetic_temperature(readings, weights)


temperatures = st.floats(min_value=-40, max_value=60, allow_nan=False)


@given(temperatures, st.integers(min_value=1, max_value=50))
def test_mkt_of_a_constant_series_is_that_constant(temperature: float, count: int) -> None:
    assert mean_kinetic_temperature([temperature] * count) == pytest.approx(temperature, abs=1e-9)


@given(st.lists(temperatures, min_size=1, max_size=200))
def test_mkt_is_never_below_the_arithmetic_mean(readings: list[float]) -> None:
    assert mean_kinetic_temperature(readings) >= statistics.fmean(readings) - 1e-9


@given(st.lists(temperatures, min_size=1, max_size=50))
def test_mkt_lies_between_the_extremes(readings: list[float]) -> None:
    mkt = mean_kinetic_temperature(readings)
    assert min(readings) - 1e-9 <= mkt <= max(readings) + 1e-9


# --- reorder plans ------------------------------------------------------------------------

USAGE = [10, 12, 8, 11, 9, 10, 14, 6, 10, 10]  # μ = 10; Σ(x−μ)² = 42; σ = √(42/9) = 2.1602469


def test_reorder_plan_worked_example() -> None:
    # z(0.95) = 1.6448536; L = 4, R = 7.
    # safety stock = 1.6448536 × 2.1602469 × √4 = 7.1065799
    # reorder point = 10 × 4 + 7.1065799 = 47.1065799
    # order-up-to  = 10 × 11 + 1.6448536 × 2.1602469 × √11 = 121.7849295
    # batches FEFO: (30 units, 2 days) → min(30, 10×2) = 20 usable, 10 expire first;
    #               (40 units, 20 days) → min(40, 10×20 − 20) = 40 usable.
    # usable on hand = 60; order = 121.785 − 60 − 10 on order = 51.785 → 5 packs of 12 = 60.
    plan = reorder_plan(
        USAGE,
        lead_time_days=4,
        review_period_days=7,
        service_level=0.95,
        batches=[(40, 20), (30, 2)],
        on_order=10,
        pack_size=12,
    )
    assert plan.mean_daily_use == 10
    assert plan.std_daily_use == pytest.approx(2.1602468995, abs=1e-9)
    assert plan.safety_stock == pytest.approx(7.1065798954, abs=1e-9)
    assert plan.reorder_point == pytest.approx(47.1065798954, abs=1e-9)
    assert plan.order_up_to == pytest.approx(121.7849295279, abs=1e-9)
    assert plan.usable_on_hand == 60
    assert plan.at_risk_of_expiry == 10
    assert plan.order_quantity == 60


def test_a_safety_margin_before_expiry_discounts_more_stock() -> None:
    # margin 1 day: (30, 2) → min(30, 10×1) = 10; (40, 20) → min(40, 10×19 − 10) = 40.
    # usable 50, at risk 20; order 121.785 − 50 − 10 = 61.785 → 6 packs of 12 = 72.
    plan = reorder_plan(USAGE, 4, 7, 0.95, [(30, 2), (40, 20)], 10, 12, margin_days=1)
    assert (plan.usable_on_hand, plan.at_risk_of_expiry, plan.order_quantity) == (50, 20, 72)


def test_enough_stock_orders_nothing() -> None:
    assert reorder_plan(USAGE, 4, 7, 0.95, [(500, 365)]).order_quantity == 0


def test_an_exact_number_of_packs_is_not_rounded_up_by_float_noise() -> None:
    # no variation: order-up-to = 10 × 12 = 120 exactly; 120 − 0.1×3 (not exact in binary)…
    plan = reorder_plan([10, 10], 5, 7, 0.9, [(0.1, 30), (0.2, 30)], pack_size=1)
    assert plan.order_quantity == math.ceil(120 - 0.30000000000000004 - 1e-9)
    assert reorder_plan([10, 10], 5, 7, 0.9, [], pack_size=12).order_quantity == 120


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"daily_usage": [3]}, "two days"),
        ({"service_level": 1.0}, "between 0 and 1"),
        ({"lead_time_days": -1}, "negative"),
        ({"pack_size": 0}, "at least 1"),
        ({"batches": [(-5, 10)]}, "negative"),
    ],
)
def test_reorder_plan_refuses_meaningless_input(kwargs: dict[str, object], problem: str) -> None:
    args: dict[str, object] = {
        "daily_usage": USAGE,
        "lead_time_days": 4,
        "review_period_days": 7,
        "service_level": 0.95,
        "batches": [],
    }
    with pytest.raises(ValueError, match=problem):
        reorder_plan(**{**args, **kwargs})  # type: ignore[arg-type]


@given(
    usage=st.lists(st.integers(min_value=0, max_value=500), min_size=2, max_size=180),
    lead=st.integers(min_value=0, max_value=60),
    review=st.integers(min_value=0, max_value=60),
    level=st.floats(min_value=0.5, max_value=0.999),
    batches=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5_000), st.integers(-30, 1_000)),
        max_size=8,
    ),
    on_order=st.integers(min_value=0, max_value=5_000),
    pack=st.integers(min_value=1, max_value=100),
)
def test_orders_are_whole_packs_never_negative_and_cover_the_gap(
    usage: list[int],
    lead: int,
    review: int,
    level: float,
    batches: list[tuple[int, int]],
    on_order: int,
    pack: int,
) -> None:
    plan = reorder_plan(usage, lead, review, level, batches, on_order, pack)
    assert plan.order_quantity >= 0
    assert plan.order_quantity % pack == 0
    assert 0 <= plan.usable_on_hand <= sum(q for q, _ in batches) + 1e-9
    gap = plan.order_up_to - plan.usable_on_hand - on_order
    assert plan.order_quantity >= gap - 1e-6
    assert plan.order_quantity < max(gap, 0) + pack
