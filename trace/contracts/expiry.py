"""Expiry: stock that has expired, or will within the warning window, at each place.

Per place and lot (the unit of a pharmacist's decision: which shelf, which batch), one
finding: ``expiry.expired`` (critical: nothing of it may be shipped or dispensed) or
``expiry.soon`` (warning, with the days left). The day a lot expires is still usable; the
day after, it has expired.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from medtrace.contracts.findings import Finding
from medtrace.models.alerts import AlertKind, Severity


@dataclass(frozen=True)
class StockLine:
    """Units of one lot held at one place."""

    gln: str
    place: str
    gtin: str
    lot: str
    expiry: dt.date
    units: int


def expiry_findings(stock: Iterable[StockLine], *, today: dt.date, warn_days: int) -> list[Finding]:
    """Findings for every stock line expired or expiring within ``warn_days``."""
    if warn_days < 0:
        raise ValueError("warn_days cannot be negative")
    findings = []
    for line in stock:
        days_left = (line.expiry - today).days
        if days_left > warn_days:
            continue
        expired = days_left < 0
        what = f"{line.units} units of lot {line.lot} (GTIN {line.gtin}) at {line.place}"
        findings.append(
            Finding(
                kind=AlertKind.EXPIRY,
                severity=Severity.CRITICAL if expired else Severity.WARNING,
                rule="expiry.expired" if expired else "expiry.soon",
                dedup_key=(
                    f"expiry.{'expired' if expired else 'soon'}:{line.gln}:{line.gtin}:{line.lot}"
                ),
                message=(
                    f"{what} expired on {line.expiry}: quarantine them for return or destruction"
                    if expired
                    else f"{what} expire on {line.expiry}, in {days_left} days: use them first"
                ),
                gln=line.gln,
                gtin=line.gtin,
                lot=line.lot,
                unit_count=line.units,
                evidence={"expiry": line.expiry.isoformat(), "days_left": days_left},
            )
        )
    return findings
