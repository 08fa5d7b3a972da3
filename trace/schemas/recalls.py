"""Wire shapes of recalls: the signed ``recall`` event, the recall, and its reach report."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from medtrace.models import UnitState
from medtrace.protocol.envelope import STATION_ID_PATTERN
from medtrace.schemas.lots import SignedLotEvent
from medtrace.schemas.participants import ParticipantPublic


class RecallEvent(SignedLotEvent):
    """The event a manufacturer's or a regulator's station signs to recall a lot."""

    type: Literal["recall"]
    reason: str = Field(min_length=1, max_length=500, description="Why, for the holders")
    station_id: str | None = Field(  # type: ignore[assignment]
        default=None,
        pattern=STATION_ID_PATTERN,
        description="The signing station; absent in a recall issued on a portal session",
    )


class RecallPublic(BaseModel):
    """A recorded recall: the lot, the reason, who, and its ledger leaf."""

    gtin: str
    lot: str
    reason: str
    recalled_by: ParticipantPublic
    event_time: dt.datetime
    event_id: str
    epcis_id: str = Field(description="The CBV 2.0 hash of its EPCIS 2.0 event")
    leaf_index: int
    alerts_raised: int = Field(description="Holders alerted by this request (0 on a retry)")


class ReachUnitPublic(BaseModel):
    """One unit of a recalled lot: where it is now."""

    serial: str
    state: UnitState
    holder: ParticipantPublic | None = Field(description="Who holds it (or shipped it)")
    destination_gln: str | None = Field(description="Where it is going, while in transit")
    dispensed: bool
    quarantined: bool


class ReachCounts(BaseModel):
    """The reach at a glance."""

    units: int
    dispensed: int
    in_transit: int
    held: int = Field(description="In someone's stock: still to be returned or destroyed")
    out_of_chain: int = Field(description="Destroyed, exported or decommissioned")
    holders: int = Field(description="Participants holding units of the lot")
    by_state: dict[UnitState, int]


class RecallReachPublic(BaseModel):
    """A recall and its reach: the counts of the whole lot, and one page of its units (in
    serial order), where each is, dispensed or not."""

    recall: RecallPublic
    counts: ReachCounts
    units: list[ReachUnitPublic]
    next_after: str | None = Field(
        description="Ask again with ``after`` set to this for the next page; None on the last"
    )
