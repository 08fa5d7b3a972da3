"""A participant's stock by product, lot and expiry (``stock_of``), as the portal shows it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlmodel import Session

from medtrace.db import create_db_engine
from medtrace.models import Participant, Role, Unit, UnitState
from medtrace.services.stock import StockRow, stock_of

TODAY = dt.date(2026, 12, 7)
PHARMACY = Participant(gln="9521234000013", name="Pharmacy", role=Role.PHARMACY)
OTHER = "9521234000020"


def _unit(serial: str, lot: str, expiry: dt.date, **where: str | UnitState) -> Unit:
    place = {"state": UnitState.STORED, "holder_gln": PHARMACY.gln, "location_gln": PHARMACY.gln}
    return Unit(gtin="09521234000112", serial=serial, lot=lot, expiry=expiry, **{**place, **where})


def test_stock_is_grouped_by_lot_soonest_expiry_first_with_how_soon(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'stock.db'}")
    Unit.__table__.create(engine)  # type: ignore[attr-defined]
    soon, later = TODAY + dt.timedelta(days=90), TODAY + dt.timedelta(days=91)
    expired = TODAY - dt.timedelta(days=1)
    with Session(engine) as session:
        session.add_all(
            [
                _unit("S1", "LATE", later),
                _unit("S2", "SOON", soon),
                _unit("S3", "SOON", soon),
                _unit("S4", "OLD", expired),
                _unit("S5", "OLD", expired, holder_gln=OTHER),
                _unit("S6", "GONE", later, state=UnitState.DISPENSED),
            ]
        )
        session.commit()
        rows = stock_of(session=session, participant=PHARMACY, today=TODAY)

    gtin = "09521234000112"
    assert rows == [
        StockRow(gtin, "OLD", expired, 1, "expired"),
        StockRow(gtin, "SOON", soon, 2, "soon"),
        StockRow(gtin, "LATE", later, 1, "ok"),
    ], "another holder's unit at this place and a dispensed unit are not stock"
