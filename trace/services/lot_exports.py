"""A lot's history for a regulator: every event of its units as an EPCIS 2.0 document
(JSON-LD, EPCIS 2.0 §9.3) or as CSV, one row per event.

Both are written from the ledger leaves (``medtrace.epcis.query.lot_events``), so an export
and the log can never disagree. A lot's history names every holder of its units: only the
regulator and the lot's manufacturer may export it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sqlmodel import Session

from medtrace.epcis.document import epcis_document
from medtrace.epcis.query import lot_events
from medtrace.errors import Forbidden, NotFound
from medtrace.models import Participant
from medtrace.services.recalls import may_recall
from medtrace.store import recalls as recall_store

CSV_COLUMNS = (
    "event_id",
    "event_time",
    "event_type",
    "action",
    "biz_step",
    "disposition",
    "epcs",
    "parent",
    "quantity_classes",
    "read_point",
    "biz_location",
)


def _lot_history(
    session: Session, participant: Participant, gtin: str, lot: str
) -> list[dict[str, Any]]:
    if not may_recall(participant, gtin):
        raise Forbidden(
            "a lot's history is exported for the regulator and the lot's manufacturer only",
            rule="export.not_visible",
        )
    if not recall_store.lot_exists(session=session, gtin=gtin, lot=lot):
        raise NotFound(f"no unit of lot {lot} of GTIN {gtin} was commissioned", rule="lot.unknown")
    return lot_events(session=session, gtin=gtin, lot=lot)


def lot_epcis(
    *, session: Session, participant: Participant, gtin: str, lot: str, now: dt.datetime
) -> dict[str, Any]:
    """The lot's events as one EPCISDocument."""
    return epcis_document(_lot_history(session, participant, gtin, lot), created=now)


def lot_csv(*, session: Session, participant: Participant, gtin: str, lot: str) -> str:
    """The lot's events as CSV (RFC 4180), one row per EPCIS event, in ledger order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event in _lot_history(session, participant, gtin, lot):
        writer.writerow(
            [
                event["eventID"],
                event["eventTime"],
                event["type"],
                event.get("action", ""),
                event.get("bizStep", ""),
                event.get("disposition", ""),
                " ".join(event.get("epcList", event.get("childEPCs", []))),
                event.get("parentID", ""),
                " ".join(q["epcClass"] for q in event.get("quantityList", [])),
                event.get("readPoint", {}).get("id", ""),
                event.get("bizLocation", {}).get("id", ""),
            ]
        )
    return out.getvalue()
