"""What a rule finds: one situation, described for a person and keyed so it is raised once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medtrace.models.alerts import AlertKind, Severity


@dataclass(frozen=True)
class Finding:
    """A situation a rule found; stored as an alert unless its ``dedup_key`` already was."""

    kind: AlertKind
    severity: Severity
    rule: str
    dedup_key: str
    message: str
    gln: str | None = None
    gtin: str | None = None
    lot: str | None = None
    unit_count: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    #: Units (GTIN, serial) held in quarantine by the alert until a QA ``release`` event.
    quarantine_units: tuple[tuple[str, str], ...] = ()
