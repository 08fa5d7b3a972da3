"""FHIR resources as a hospital information system sends them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path

from .chain import EXPIRY, LOT


def now() -> str:
    """The current time as a FHIR instant (UTC, milliseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dispense_of(serial: str, *, lot: str = LOT, **changes: Any) -> dict[str, Any]:
    """A MedicationDispense of one pack: a contained Medication named by the pack's Digital
    Link URI (read from its QR code), with its GTIN, lot and expiry; handed over now."""
    link = "https://id.gs1.org" + digital_link_path(GTIN, serial, lot=lot)
    return {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "pack",
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": link}],
                "code": {"coding": [{"system": "https://www.gs1.org/gtin", "code": GTIN}]},
                "batch": {"lotNumber": lot, "expirationDate": EXPIRY.isoformat()},
            }
        ],
        "medicationReference": {"reference": "#pack"},
        "quantity": {"value": 1, "unit": "pack"},
        "whenHandedOver": now(),
    } | changes
