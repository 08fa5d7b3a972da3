"""China drug identification codes and the GTINs they are mapped to."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from medtrace.models.cn import CnDrugCode


def get_drug_code(*, session: Session, drug_code: str) -> CnDrugCode | None:
    """The mapping of one drug identification code."""
    return session.get(CnDrugCode, drug_code)


def get_drug_codes(*, session: Session, drug_codes: Iterable[str]) -> dict[str, CnDrugCode]:
    """Mappings by drug code, in one query (a commissioning batch checks all of its codes)."""
    wanted = set(drug_codes)
    if not wanted:
        return {}
    rows = session.exec(select(CnDrugCode).where(col(CnDrugCode.drug_code).in_(wanted)))
    return {row.drug_code: row for row in rows}


def gtins_with_drug_codes(*, session: Session, gtins: Iterable[str]) -> set[str]:
    """Which of ``gtins`` have at least one drug code mapped to them, in one query."""
    wanted = set(gtins)
    if not wanted:
        return set()
    rows = session.exec(select(CnDrugCode.gtin).where(col(CnDrugCode.gtin).in_(wanted)).distinct())
    return set(rows)


def add_drug_code(*, session: Session, mapping: CnDrugCode) -> CnDrugCode:
    """Insert a mapping and flush."""
    session.add(mapping)
    session.flush()
    return mapping
