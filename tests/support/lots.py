"""Lot records for tests: real PDFs, a signed ``lot_record`` envelope, and its upload."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import httpx
from reportlab.pdfgen.canvas import Canvas

from medtrace.demo import GTIN
from medtrace.protocol.envelope import sign_event
from medtrace.scanners.station import Station


def pdf(text: str) -> bytes:
    """A real one-page PDF."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    canvas.drawString(72, 720, text)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def record(
    station: Station,
    lot: str,
    version: int,
    files: dict[str, bytes],
    *,
    kind: str = "inspection_report",
    **changes: Any,
) -> dict[str, Any]:
    """A ``lot_record`` envelope signed by ``station`` naming ``files`` (all of ``kind``)."""
    event = {
        "type": "lot_record",
        "gtin": GTIN,
        "lot": lot,
        "version": version,
        "production_date": "2026-10-01",
        "expiry": "2028-09-30",
        "quantity": 10_000,
        "product": {
            "name_en": "Amoxicillin 500 mg capsules",
            "name_zh": "阿莫西林胶囊",
            "form": "capsule",
            "strength": "500 mg",
            "storage_low_c": 2.0,
            "storage_high_c": 8.0,
        },
        "documents": [
            {
                "kind": kind,
                "filename": name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            for name, data in files.items()
        ],
        "gln": station.gln,
        "event_time": "2026-11-22T09:00:00Z",
        "station_id": station.station_id,
    } | changes
    return sign_event(event, station_id=station.station_id, key=station.key)


def post(
    base_url: str, token: str, envelope: dict[str, Any], files: dict[str, bytes]
) -> httpx.Response:
    """``POST /api/v1/lots`` as a manufacturer's system sends it."""
    return httpx.post(
        f"{base_url}/api/v1/lots",
        headers={"Authorization": f"Bearer {token}"},
        data={"envelope": json.dumps(envelope)},
        files=[("documents", (name, data, "application/pdf")) for name, data in files.items()],
    )
