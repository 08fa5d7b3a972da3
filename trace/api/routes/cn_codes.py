"""China drug identification codes: a manufacturer maps each to one of its products (GTIN).

A pack carrying a China drug traceability code is then the unit (that GTIN, the 20-digit code);
its verify page is ``/cn/{code}`` (``medtrace.web.routes``).
"""

from __future__ import annotations

from fastapi import APIRouter, status

from medtrace.api.deps import CurrentParticipant, SessionDep
from medtrace.schemas.cn import CnDrugCodeCreate, CnDrugCodePublic
from medtrace.services import cn_codes

router = APIRouter(prefix="/api/v1/products/cn-codes", tags=["cn-codes"])


@router.post("", response_model=CnDrugCodePublic, status_code=status.HTTP_201_CREATED)
def register_drug_code(
    mapping_in: CnDrugCodeCreate, participant: CurrentParticipant, session: SessionDep
) -> CnDrugCodePublic:
    """Map a drug identification code to one of the calling manufacturer's GTINs."""
    return cn_codes.register_drug_code(
        session=session, participant=participant, mapping_in=mapping_in
    )


@router.get("/{drug_code}", response_model=CnDrugCodePublic)
def read_drug_code(drug_code: str, session: SessionDep) -> CnDrugCodePublic:
    """The product a drug identification code is mapped to."""
    return cn_codes.get_drug_code(session=session, drug_code=drug_code)
