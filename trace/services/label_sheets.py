"""A lot's label sheet for its manufacturer: a PDF of the labels of the units commissioned
for that lot and not yet moved (``medtrace.labels``: GS1 DataMatrix and a QR of the Digital
Link URI per pack).

Commissioning needs the manufacturer's station key, which a browser does not hold: units are
commissioned (and their labels printed) with ``medtrace labels units``; this reprints the
sheet of those still at the manufacturer, for example after a printer jam.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlmodel import Session

from medtrace.errors import Forbidden, InvalidInput, NotFound
from medtrace.labels import PAGE_FORMATS, LabelSheet, unit_label
from medtrace.models import Participant, Role, UnitState
from medtrace.protocol.identifiers import GS1Data, in_company_prefix
from medtrace.store import units as unit_store

MAX_LABELS = 10_000
"""Labels in one download; a larger run is printed with ``medtrace labels units``."""


def lot_label_sheet(
    *, session: Session, participant: Participant, gtin: str, lot: str, base_url: str, page: str
) -> bytes:
    """The PDF label sheet of the lot's units still commissioned (not yet packed or moved)."""
    if not (
        participant.role is Role.MANUFACTURER
        and participant.company_prefix
        and in_company_prefix(gtin, participant.company_prefix)
    ):
        raise Forbidden(
            "only the manufacturer of a product prints its labels", rule="labels.not_yours"
        )
    if page not in PAGE_FORMATS:
        raise InvalidInput(f"page is one of {', '.join(PAGE_FORMATS)}", rule="labels.page")
    units = [
        u
        for u in unit_store.get_lot_units(session=session, gtin=gtin, lot=lot)
        if u.state is UnitState.COMMISSIONED
    ]
    if not units:
        raise NotFound(
            f"no unit of lot {lot} is commissioned and still at the manufacturer; commission "
            "units with `medtrace labels units`",
            rule="labels.nothing_to_print",
        )
    if len(units) > MAX_LABELS:
        raise InvalidInput(
            f"{len(units)} labels are more than one download ({MAX_LABELS}); print them with "
            "`medtrace labels units`",
            rule="labels.too_many",
        )
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "labels.pdf"
        with LabelSheet(PAGE_FORMATS[page], pdf=pdf) as sheet:
            for unit in units:
                data = GS1Data(gtin=unit.gtin, serial=unit.serial, lot=unit.lot, expiry=unit.expiry)
                sheet.add(unit_label(data, base_url=base_url))
        return pdf.read_bytes()
