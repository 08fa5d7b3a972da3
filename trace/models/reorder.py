"""Reorder plans, computed nightly per pharmacy and product and kept as a history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class StoredReorderPlan(SQLModel, table=True):
    """One product's plan at one pharmacy, as computed on ``computed_on`` (units)."""

    __tablename__ = "reorder_plans"
    __table_args__ = (UniqueConstraint("gln", "gtin", "computed_on"),)

    id: int | None = Field(default=None, primary_key=True)
    gln: str = Field(sa_type=String(13), index=True)
    gtin: str = Field(sa_type=String(14))
    computed_on: dt.date
    history_days: int
    lead_time_days: float
    review_period_days: float
    service_level: float
    mean_daily_use: float
    std_daily_use: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    on_hand: int
    usable_on_hand: float
    at_risk_of_expiry: float
    order_quantity: int
    computed_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
