"""Wire shapes of reorder plans."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class StockBatch(BaseModel):
    """Units of one lot on hand, and the days left before they expire."""

    lot: str
    expiry: dt.date
    quantity: int
    days_to_expiry: int


class ReorderPlanPublic(BaseModel):
    """One product's reorder plan at one pharmacy (quantities in units)."""

    gln: str
    gtin: str
    product: str | None = Field(description="The product's name from its lot record, if any")
    computed_on: dt.date
    history_days: int
    lead_time_days: float
    review_period_days: float
    service_level: float
    dispensed: int = Field(description="Units dispensed over the history")
    mean_daily_use: float
    std_daily_use: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    on_hand: int
    usable_on_hand: float
    at_risk_of_expiry: float = Field(description="Stock on hand that will expire before use")
    expiry_risk: bool = Field(description="Some stock will expire before it can be used")
    reorder_now: bool = Field(description="Usable stock is at or below the reorder point")
    order_quantity: int
    batches: list[StockBatch]


class ReorderPlansPublic(BaseModel):
    """A pharmacy's plans, one per product it dispensed or holds."""

    data: list[ReorderPlanPublic]
    count: int
