"""Wire shapes of China's drug traceability codes: drug code mappings and the /cn verify JSON."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from medtrace.schemas.verify import VerifyPublic


class CnDrugCodeCreate(BaseModel):
    """A manufacturer maps a drug identification code to one of its products.

    Both values are checked by the service, which names the rule a bad one breaks
    (``cn.bad_drug_code``, ``gs1.bad_check_digit``, ...).
    """

    model_config = ConfigDict(extra="forbid")

    drug_code: str = Field(description="The 7-digit drug identification code (药品标识码)")
    gtin: str = Field(description="The product's GTIN, within the manufacturer's company prefix")


class CnDrugCodePublic(BaseModel):
    """A drug identification code, the GTIN it names and who mapped it."""

    drug_code: str
    gtin: str
    manufacturer: str = Field(description="GLN of the manufacturer that registered it")
    created_at: dt.datetime


class CnCodePublic(BaseModel):
    """A China drug traceability code taken apart, and what medtrace could check of it."""

    code: str = Field(description="The 20 digits, the unit's serial in medtrace")
    drug_code: str = Field(description="The 7-digit drug identification code")
    pack_serial: str = Field(description="The 9-digit serial of the pack")
    agency_check: str = Field(description="The 4 check digits of the issuing agency")
    gtin: str | None = Field(description="The product the drug code is mapped to, if any")
    check_note: str = Field(description="Only the issuing agency can verify the check digits")


class CnVerifyPublic(VerifyPublic):
    """The verify answer of a pack keyed by its China code: the unit's usual answer (its
    ``unit.gtin`` and ``unit.serial`` are what a station signs) plus the code itself."""

    cn: CnCodePublic
