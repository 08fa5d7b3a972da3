"""The shapes of captured events: what a station sends, and what the capture API answers.

The signed event is parsed only after its signature has been checked over the exact object
the station sent (``medtrace.protocol.envelope``), so parsing here can normalise nothing: every
check refuses rather than repairs.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Self

from biip import ParseError
from biip.sscc import Sscc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medtrace.bounds import Day, SignedInstant
from medtrace.errors import InvalidInput
from medtrace.models import EventType
from medtrace.protocol.envelope import STATION_ID_PATTERN
from medtrace.protocol.identifiers import check_x20, parse_gln, parse_gtin


def parse_sscc(value: str) -> str:
    """Validate an 18-digit SSCC (GS1 AI 00, mod-10 check digit) or raise ``InvalidInput``."""
    if not (value.isascii() and value.isdigit() and len(value) == 18):
        raise InvalidInput(f"SSCC {value!r} must be 18 digits", rule="gs1.sscc_format")
    try:
        return Sscc.parse(value).value
    except ParseError as exc:
        raise InvalidInput(str(exc), rule="gs1.bad_check_digit", field="sscc") from exc


# A capture batch names the same few GTINs and GLNs hundreds of times: check each once.
# Only valid values are cached (a refusal raises, and exceptions are not cached).
_gtin14 = functools.lru_cache(maxsize=4096)(parse_gtin)
_gln13 = functools.lru_cache(maxsize=4096)(parse_gln)

#: Event types that name a destination GLN (the goods leave for it).
TYPES_WITH_DESTINATION = frozenset({EventType.SHIP, EventType.RETURN})
#: Aggregation (EPCIS AggregationEvent): they name a container and list its children.
AGGREGATION_TYPES = frozenset({EventType.PACK, EventType.UNPACK})
#: Events only a single unit can undergo (a case is never commissioned or dispensed whole).
UNIT_ONLY_TYPES = frozenset({EventType.COMMISSION, EventType.DISPENSE})
MAX_CHILDREN = 10_000
#: The earliest expiry date an event may carry: medtrace records medicines made this century.
EARLIEST_EXPIRY = dt.date(2000, 1, 1)
#: How many years after the event an expiry may lie: GS1's YYMMDD (AI 17) reads a year at
#: most 50 years ahead of today (General Specifications §7.12), so a later date cannot be
#: printed on the label and read back.
EXPIRY_HORIZON_YEARS = 50


class ObjectRef(BaseModel):
    """One object an event is about: a unit (``gtin`` + ``serial``) or a container (``sscc``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = Field(default=None, description="A case or pallet (GS1 AI 00)")

    @field_validator("gtin")
    @classmethod
    def _gtin(cls, value: str | None) -> str | None:
        if value is not None and _gtin14(value) != value:
            raise InvalidInput(f"GTIN {value!r} must be sent as 14 digits", rule="gs1.gtin_format")
        return value

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str | None) -> str | None:
        return None if value is None else check_x20(value, field="serial")

    @field_validator("sscc")
    @classmethod
    def _sscc(cls, value: str | None) -> str | None:
        return None if value is None else parse_sscc(value)

    @model_validator(mode="after")
    def _one_object(self) -> Self:
        unit = self.gtin is not None and self.serial is not None
        partial = (self.gtin is None) != (self.serial is None)
        if partial or unit == (self.sscc is not None):
            raise InvalidInput(
                "name either a unit (gtin and serial) or a container (sscc)",
                rule="event.object",
            )
        return self


class SignedEvent(ObjectRef):
    """The event object a station signs (its members are exactly these).

    Issue-3 events (commission, ship, receive, dispense of one unit) keep their exact shape;
    the other members are optional and appear only where the type needs them.
    """

    type: EventType
    lot: str | None = None
    expiry: Day | None = Field(default=None, description="YYYY-MM-DD")
    gln: str = Field(description="Where the event happened")
    destination_gln: str | None = Field(
        default=None, description="Where a shipment or a return goes"
    )
    location_gln: str | None = Field(
        default=None, description="store: the place inside the site (a fridge, a shelf)"
    )
    children: tuple[ObjectRef, ...] | None = Field(
        default=None,
        description="pack: what goes into the container; unpack: what comes out (all if absent)",
    )
    event_time: SignedInstant = Field(description="RFC 3339 with a time zone")
    station_id: str | None = Field(
        default=None,
        pattern=STATION_ID_PATTERN,
        description="The signing station; absent for events captured with a participant's "
        "API token (EPCIS capture)",
    )

    @field_validator("gln", "destination_gln", "location_gln")
    @classmethod
    def _gln(cls, value: str | None) -> str | None:
        return None if value is None else _gln13(value)

    @field_validator("lot")
    @classmethod
    def _lot(cls, value: str | None) -> str | None:
        return None if value is None else check_x20(value, field="lot")

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise InvalidInput("event_time needs a time zone (e.g. Z)", rule="event.naive_time")
        return value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _plausible_expiry(self) -> SignedEvent:
        """Refuse an expiry no label can carry (``event.implausible_expiry``): before
        ``EARLIEST_EXPIRY``, or after the end of the year ``EXPIRY_HORIZON_YEARS`` after the
        event's."""
        if self.expiry is None:
            return self
        latest = dt.date(min(self.event_time.year + EXPIRY_HORIZON_YEARS, dt.MAXYEAR), 12, 31)
        if not EARLIEST_EXPIRY <= self.expiry <= latest:
            raise InvalidInput(
                f"expiry {self.expiry.isoformat()} is implausible: it must lie between "
                f"{EARLIEST_EXPIRY.isoformat()} and {latest.isoformat()} "
                f"({EXPIRY_HORIZON_YEARS} years after the event, GS1's YYMMDD window)",
                rule="event.implausible_expiry",
            )
        return self

    @model_validator(mode="after")
    def _members_fit_the_type(self) -> SignedEvent:
        if (self.type in TYPES_WITH_DESTINATION) != (self.destination_gln is not None):
            raise InvalidInput(
                "destination_gln is required for ship and return and not allowed otherwise",
                rule="event.destination",
            )
        if self.location_gln is not None and self.type is not EventType.STORE:
            raise InvalidInput("location_gln belongs to store events", rule="event.location")
        if self.type in AGGREGATION_TYPES:
            self._check_aggregation()
        elif self.children is not None:
            raise InvalidInput("children belong to pack and unpack", rule="event.children")
        if self.type in UNIT_ONLY_TYPES and self.sscc is not None:
            raise InvalidInput(f"{self.type} names a unit, not an SSCC", rule="event.needs_unit")
        if self.sscc is not None and (self.lot is not None or self.expiry is not None):
            raise InvalidInput("a container has no lot or expiry", rule="event.object")
        return self

    def _check_aggregation(self) -> None:
        if self.sscc is None:
            raise InvalidInput(f"{self.type} names the container's sscc", rule="event.needs_sscc")
        if self.type is EventType.PACK and not self.children:
            raise InvalidInput("pack lists the children packed", rule="event.children")
        children = self.children or ()
        if len(children) > MAX_CHILDREN:
            raise InvalidInput(f"at most {MAX_CHILDREN} children", rule="event.children")
        if len(set(children)) != len(children) or any(c.sscc == self.sscc for c in children):
            raise InvalidInput(
                "children are distinct and never the container itself", rule="event.children"
            )


class EnvelopeIn(BaseModel):
    """A signed envelope as a station posts it to capture."""

    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any]
    signature: str
    station_id: str = Field(pattern=STATION_ID_PATTERN)


class CaptureResult(BaseModel):
    """The receipt for one envelope: its id and its ledger leaf."""

    event_id: str
    leaf_index: int
    duplicate: bool = Field(description="True when this exact event was captured before")
    units: int | None = Field(
        default=None,
        description="Units the event concerned (a case or pallet moves everything inside it); "
        "null for a duplicate, whose first receipt said it",
    )


class CaptureResponse(BaseModel):
    """Receipts in the order the envelopes were sent."""

    results: list[CaptureResult]
    count: int


class RefusalDetail(BaseModel):
    """Why a request was refused: the rule it broke, for a program, and a message, for a
    person; some refusals add context (``index`` of the refused envelope, ``errors``)."""

    model_config = ConfigDict(extra="allow")

    rule: str = Field(description="Stable dotted name, e.g. custody.not_holder")
    message: str


class Refusal(BaseModel):
    """The body of every 4xx answer of the API."""

    detail: RefusalDetail
