"""Wire shapes of products and lot records (the signed ``lot_record`` event and views)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medtrace.bounds import Day, Finite, PositiveInteger, SignedInstant
from medtrace.protocol.envelope import STATION_ID_PATTERN
from medtrace.protocol.identifiers import check_x20, parse_gln, parse_gtin

DocumentKind = Literal["inspection_report", "certificate_of_analysis", "amendment", "other"]


class ColdChainLimitsIn(BaseModel):
    """The cold-chain limits of a product that its lot record may give; each one left out is
    the configured default."""

    model_config = ConfigDict(extra="forbid")

    max_excursion_minutes: Finite | None = Field(
        default=None, gt=0, description="Longest single excursion outside the band allowed"
    )
    excursion_budget_minutes: Finite | None = Field(
        default=None, gt=0, description="Minutes outside the band allowed over a unit's life"
    )
    freeze_c: Finite | None = Field(default=None, description="At or below this, frozen")
    max_freeze_minutes: Finite | None = Field(
        default=None, gt=0, description="Minutes frozen that are never excused"
    )
    mkt_limit_c: Finite | None = Field(
        default=None, description="Highest mean kinetic temperature over the window"
    )
    mkt_window_hours: Finite | None = Field(default=None, gt=0, description="The MKT window")


class ProductInfo(BaseModel):
    """The product a lot belongs to, in the manufacturer's words."""

    model_config = ConfigDict(extra="forbid")

    name_en: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(default="", max_length=200)
    form: str = Field(default="", max_length=100, description="Dosage form or device type")
    strength: str = Field(default="", max_length=100)
    storage_low_c: Finite | None = None
    storage_high_c: Finite | None = None
    cold_chain: ColdChainLimitsIn | None = Field(
        default=None, description="Cold-chain limits beside the band; the settings' otherwise"
    )


class DocumentRef(BaseModel):
    """A document named by the signed record: its content hash binds the file to the ledger."""

    model_config = ConfigDict(extra="forbid")

    kind: DocumentKind
    filename: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: PositiveInteger


class SignedLotEvent(BaseModel):
    """What every signed event about a whole lot carries (a lot record, a recall): the lot,
    who signs it where, and when. Checked by :func:`medtrace.services.signed.check_signed`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gtin: str
    lot: str
    gln: str = Field(description="The signing participant")
    event_time: SignedInstant = Field(description="RFC 3339 with a time zone")
    station_id: str = Field(pattern=STATION_ID_PATTERN)

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str) -> str:
        return parse_gtin(value)

    @field_validator("gln")
    @classmethod
    def _gln(cls, value: str) -> str:
        return parse_gln(value)

    @field_validator("lot")
    @classmethod
    def _lot(cls, value: str) -> str:
        return check_x20(value, field="lot")

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("event_time needs a time zone (e.g. Z)")
        return value


class LotRecordEvent(SignedLotEvent):
    """The event a manufacturer's station signs to register (version 1) or amend a lot."""

    type: Literal["lot_record"]
    version: PositiveInteger
    production_date: Day
    expiry: Day
    quantity: PositiveInteger
    product: ProductInfo
    documents: list[DocumentRef] = Field(default_factory=list)


class DocumentPublic(DocumentRef):
    """A document of a lot record, with where to download it."""

    url: str


class LotVersionPublic(BaseModel):
    """One version of a lot record."""

    version: int
    production_date: dt.date
    expiry: dt.date
    quantity: int
    event_id: str
    leaf_index: int
    station_id: str
    recorded_at: dt.datetime
    documents: list[DocumentPublic]


class LotPublic(BaseModel):
    """A lot: its product and every version of its record, oldest first."""

    gtin: str
    lot: str
    product: ProductInfo | None
    versions: list[LotVersionPublic]
