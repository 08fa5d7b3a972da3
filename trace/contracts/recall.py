"""Recall reach: who must act on a recalled lot.

Every participant holding units of the lot (in stock, or shipping them) gets one critical
alert naming the recall, how many of its units it holds and what to do; a unit on its way
alerts its destination too, which must not put it into stock. Dispensed, destroyed and
exported units have no holder to alert: the reach report lists them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from medtrace.contracts.findings import Finding
from medtrace.models.alerts import AlertKind, Severity


@dataclass(frozen=True)
class RecallNotice:
    """A recorded recall: which lot, why, by whom, and its ledger leaf."""

    event_id: str
    leaf_index: int
    gtin: str
    lot: str
    reason: str
    recalled_by: str
    recalled_at: dt.datetime


@dataclass(frozen=True)
class Holding:
    """Units of the recalled lot at one participant: held there, or on their way to it."""

    gln: str
    name: str
    units: int
    inbound: bool = False


def recall_findings(recall: RecallNotice, holdings: Iterable[Holding]) -> list[Finding]:
    """One alert per participant that holds (or will receive) units of the lot."""
    findings = []
    for holding in holdings:
        where = "on their way to you" if holding.inbound else "that you hold"
        findings.append(
            Finding(
                kind=AlertKind.RECALL,
                severity=Severity.CRITICAL,
                rule="recall.inbound" if holding.inbound else "recall.held",
                dedup_key=(
                    f"recall:{recall.event_id}:{holding.gln}:"
                    f"{'inbound' if holding.inbound else 'held'}"
                ),
                message=(
                    f"lot {recall.lot} of GTIN {recall.gtin} is recalled by {recall.recalled_by}"
                    f" ({recall.reason}): {holding.units} units {where}, {holding.name}. They "
                    "can no longer be shipped or dispensed: set them apart for return or "
                    "destruction"
                ),
                gln=holding.gln,
                gtin=recall.gtin,
                lot=recall.lot,
                unit_count=holding.units,
                evidence={
                    "recall_event_id": recall.event_id,
                    "leaf_index": recall.leaf_index,
                    "reason": recall.reason,
                    "recalled_by": recall.recalled_by,
                    "recalled_at": recall.recalled_at.isoformat(),
                },
            )
        )
    return findings
