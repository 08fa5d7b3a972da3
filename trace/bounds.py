"""The extremes a request may carry: bounded numbers, days and times, shared by every route
and schema.

Python's integers are unbounded and its datetimes end at year 9999, but the store's columns
do not: PostgreSQL's INTEGER is 32-bit where SQLite's holds 64 bits, BIGINT stops at 2^63 - 1,
and a time of 9999-12-31 with a negative UTC offset overflows when it is made UTC. A value
beyond what the store and the code can hold is refused here, at the boundary, the same way on
both backends (a 422 naming the field), so it never reaches a query as an overflow (a 500).
Query and path parameters, and the fields of the wire schemas, use these types.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import AfterValidator, AllowInfNan, BeforeValidator

#: The largest value of a BIGINT column on both backends (leaf indexes, tree sizes, offsets).
MAX_BIGINT = 2**63 - 1
#: The largest value of an INTEGER column: 32-bit on PostgreSQL; SQLite would store more, so
#: both are held to this bound and agree.
MAX_INTEGER = 2**31 - 1
#: The longest planning horizon in days (lead times, review periods): ten years.
MAX_DAYS = 3660

#: The earliest and latest wall-clock times accepted: a day inside Python's years 1..9999, so
#: that any UTC offset (at most ±24 h) and a day's arithmetic never leave the range, and both
#: databases' timestamp types hold them.
EARLIEST = dt.datetime(1, 1, 3)
LATEST = dt.datetime(9999, 12, 29, 23, 59, 59, 999999)


def within_time_range(value: dt.datetime) -> dt.datetime:
    """``value`` if its wall-clock time lies in ``EARLIEST..LATEST``; ``ValueError`` otherwise
    (pydantic makes it a 422)."""
    if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
        raise ValueError(f"a time must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


def within_date_range(value: dt.date) -> dt.date:
    """``value`` if it lies in the dates of ``EARLIEST..LATEST``; ``ValueError`` otherwise."""
    if not EARLIEST.date() <= value <= LATEST.date():
        raise ValueError(
            f"a date must lie between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()}"
        )
    return value


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def rfc3339_text(value: Any) -> Any:
    """Refuse anything but an RFC 3339 date-time for a signed time (its zone is checked
    after): pydantic would read a number, or digits like ``"2030"``, as Unix seconds, but the
    signed text is what is stored and shown, so it must say the time itself."""
    if not isinstance(value, dt.datetime) and not (
        isinstance(value, str) and _RFC3339.fullmatch(value)
    ):
        raise ValueError("a time is RFC 3339 text, e.g. 2026-01-31T12:00:00Z")
    return value


#: An integer a BIGINT column holds (leaf indexes, tree sizes): the service names the rule
#: of a smaller range (a negative index is ``ledger.bad_index``).
BigInt = Annotated[int, Interval(ge=-MAX_BIGINT - 1, le=MAX_BIGINT)]
#: A positive integer an INTEGER column holds on both backends: quantities, versions, sizes.
PositiveInteger = Annotated[int, Interval(gt=0, le=MAX_INTEGER)]
#: A finite, non-negative number of days up to ``MAX_DAYS``.
Days = Annotated[float, AllowInfNan(False), Interval(ge=0, le=MAX_DAYS)]
#: A finite number (no ±inf, no NaN).
Finite = Annotated[float, AllowInfNan(False)]
#: A time within ``EARLIEST..LATEST``.
Instant = Annotated[dt.datetime, AfterValidator(within_time_range)]
#: A time a station signed: RFC 3339 text within ``EARLIEST..LATEST``.
SignedInstant = Annotated[
    dt.datetime, BeforeValidator(rfc3339_text), AfterValidator(within_time_range)
]
#: A calendar date within the dates of ``EARLIEST..LATEST``.
Day = Annotated[dt.date, AfterValidator(within_date_range)]
