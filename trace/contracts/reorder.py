"""Reorder plans from dispense history: periodic review with safety stock.

A pharmacy reviews stock every R days and a delivery takes L days. From the daily use over
the last months (mean μ, sample standard deviation σ) and the service level wanted (the
normal quantile z), the classic (R, S) policy gives:

    safety_stock  = z·σ·√L
    reorder_point = μ·L + safety_stock
    order_up_to   = μ·(L+R) + z·σ·√(L+R)

Stock that will expire before it can be used does not count. Batches are consumed first
expiry first out; batch k (sorted by days to expiry dₖ) can contribute at most what the
pharmacy will use before it expires, less what earlier batches already cover:

    usableₖ = min(qₖ, max(0, μ·(dₖ − margin_days) − Σ_{j<k} usableⱼ))

and the order brings the position back up to ``order_up_to``, in whole packs, rounded up:

    order_quantity = ceil⁺(max(0, order_up_to − usable_on_hand − on_order) / pack) · pack
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# A quantity within this of a whole number of packs counts as that number: floating-point
# noise must not turn an exact 20 packs into 21.
_PACK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ReorderPlan:
    """One product's plan at one pharmacy (quantities in units)."""

    mean_daily_use: float
    std_daily_use: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    usable_on_hand: float
    at_risk_of_expiry: float
    order_quantity: int


def reorder_plan(
    daily_usage: Sequence[float],
    lead_time_days: float,
    review_period_days: float,
    service_level: float,
    batches: Sequence[tuple[float, float]],
    on_order: float = 0,
    pack_size: int = 1,
    margin_days: float = 0,
) -> ReorderPlan:
    """The reorder plan for one product; ``batches`` are ``(quantity, days_to_expiry)``.

    ``at_risk_of_expiry`` is the stock on hand that will expire before it can be used: the
    number to flag. Raises ``ValueError`` for fewer than two days of history, a service
    level outside (0, 1), a negative lead time, review period, quantity or order, or a pack
    size below one.
    """
    if len(daily_usage) < 2:
        raise ValueError("need at least two days of usage to estimate its variation")
    if not 0 < service_level < 1:
        raise ValueError("service_level must be between 0 and 1 (exclusive)")
    if lead_time_days < 0 or review_period_days < 0 or on_order < 0:
        raise ValueError("lead time, review period and quantity on order cannot be negative")
    if pack_size < 1:
        raise ValueError("pack_size must be at least 1")
    if any(quantity < 0 for quantity, _ in batches):
        raise ValueError("batch quantities cannot be negative")
    mu = statistics.fmean(daily_usage)
    sigma = statistics.stdev(daily_usage)
    z = statistics.NormalDist().inv_cdf(service_level)
    safety_stock = z * sigma * math.sqrt(lead_time_days)
    cover = lead_time_days + review_period_days
    order_up_to = mu * cover + z * sigma * math.sqrt(cover)
    usable = _usable_on_hand(batches, mu, margin_days)
    shortfall = max(0.0, order_up_to - usable - on_order)
    packs = math.ceil(shortfall / pack_size - _PACK_TOLERANCE) if shortfall > 0 else 0
    return ReorderPlan(
        mean_daily_use=mu,
        std_daily_use=sigma,
        safety_stock=safety_stock,
        reorder_point=mu * lead_time_days + safety_stock,
        order_up_to=order_up_to,
        usable_on_hand=usable,
        at_risk_of_expiry=math.fsum(q for q, _ in batches) - usable,
        order_quantity=packs * pack_size,
    )


def _usable_on_hand(batches: Sequence[tuple[float, float]], mu: float, margin: float) -> float:
    """First expiry first out: what each batch adds before it expires."""
    used = 0.0
    for quantity, days_to_expiry in sorted(batches, key=lambda batch: batch[1]):
        used += min(quantity, max(0.0, mu * (days_to_expiry - margin) - used))
    return used
