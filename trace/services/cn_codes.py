"""China's drug traceability codes (药品追溯码) as unit keys.

A code is 20 digits: a 7-digit drug identification code, a 9-digit pack serial and 4 check
digits that only the issuing agency can verify. A manufacturer maps each of its drug codes to
one of its GTINs; a pack carrying a code is then the unit ``(that GTIN, the whole code)``,
since GS1's AI 21 takes 20 characters. Custody, the ledger, EPCIS and FHIR thus need nothing
new, and a station that scans a China code learns the unit's GTIN from ``/cn/{code}``.

A GS1 serial may also be 20 digits, so a serial is taken for a China code only where a mapping
is involved: when its drug code is mapped, or its GTIN has drug codes mapped to it. Then the two
must agree, or commissioning is refused (:class:`CnCommissionRule`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace import ledger
from medtrace.errors import Conflict, CustodyViolation, NotFound
from medtrace.models import Participant, Role, Verdict, as_utc
from medtrace.models.cn import CnDrugCode
from medtrace.protocol.identifiers import (
    ChinaDrugCode,
    cn_code_in_serial,
    in_company_prefix,
    parse_cn_drug_code,
    parse_cn_drug_id,
    parse_gtin,
)
from medtrace.schemas.cn import CnCodePublic, CnDrugCodeCreate, CnDrugCodePublic, CnVerifyPublic
from medtrace.services.temperature import TemperaturePolicy
from medtrace.services.verify import verify_unit
from medtrace.store import cn_codes as cn_store
from medtrace.store import participants as participant_store


def register_drug_code(
    *, session: Session, participant: Participant, mapping_in: CnDrugCodeCreate
) -> CnDrugCodePublic:
    """Map a drug identification code to one of the manufacturer's GTINs.

    Registering the same mapping again returns it unchanged. Raises ``InvalidInput`` for a
    malformed code or GTIN, ``CustodyViolation`` (``cn.not_a_manufacturer``,
    ``cn.outside_company_prefix``) and ``Conflict`` (``cn.drug_code_taken``) when the code
    already names another product.
    """
    drug_code = parse_cn_drug_id(mapping_in.drug_code)
    gtin = parse_gtin(mapping_in.gtin)
    if participant.role is not Role.MANUFACTURER:
        raise CustodyViolation(
            f"only a manufacturer maps drug codes; {participant.gln} is a {participant.role}",
            rule="cn.not_a_manufacturer",
        )
    if not (participant.company_prefix and in_company_prefix(gtin, participant.company_prefix)):
        raise CustodyViolation(
            f"GTIN {gtin} is outside company prefix {participant.company_prefix}",
            rule="cn.outside_company_prefix",
        )
    assert participant.id is not None
    try:
        with session.begin():
            existing = cn_store.get_drug_code(session=session, drug_code=drug_code)
            if existing is None:
                existing = cn_store.add_drug_code(
                    session=session,
                    mapping=CnDrugCode(
                        drug_code=drug_code, gtin=gtin, participant_id=participant.id
                    ),
                )
            elif existing.gtin != gtin:
                raise _taken(drug_code, existing.gtin)
    except IntegrityError as exc:  # a concurrent registration of the same code won
        raise Conflict(
            f"drug code {drug_code} was registered at the same time; read it and retry",
            rule="store.conflict",
        ) from exc
    return _public(existing, participant.gln)


def _taken(drug_code: str, gtin: str) -> Conflict:
    return Conflict(
        f"drug code {drug_code} is already mapped to another product, GTIN {gtin}",
        rule="cn.drug_code_taken",
    )


def get_drug_code(*, session: Session, drug_code: str) -> CnDrugCodePublic:
    """The product a drug identification code is mapped to (public: packs show it anyway).

    Raises ``InvalidInput`` (``cn.bad_drug_code``) or ``NotFound`` (``cn.unknown_drug_code``).
    """
    mapping = cn_store.get_drug_code(session=session, drug_code=parse_cn_drug_id(drug_code))
    if mapping is None:
        raise NotFound(f"drug code {drug_code} is not mapped", rule="cn.unknown_drug_code")
    owner = participant_store.get_participant(
        session=session, participant_id=mapping.participant_id
    )
    assert owner is not None
    return _public(mapping, owner.gln)


def _public(mapping: CnDrugCode, manufacturer_gln: str) -> CnDrugCodePublic:
    return CnDrugCodePublic(
        drug_code=mapping.drug_code,
        gtin=mapping.gtin,
        manufacturer=manufacturer_gln,
        created_at=as_utc(mapping.created_at),
    )


class CnCommissionRule:
    """The check a capture batch runs on each commissioning: a serial that is a China code
    names the product its drug code is mapped to.

    Lookups are remembered for the batch, so commissioning thousands of packs of one product
    costs two queries.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._mapped_to: dict[str, str | None] = {}  # drug code -> GTIN
        self._gtin_has_codes: dict[str, bool] = {}

    def check(self, gtin: str, serial: str) -> None:
        """Raise ``CustodyViolation`` if commissioning ``(gtin, serial)`` contradicts a mapping:
        ``cn.drug_code_other_product`` (the code's drug code names another GTIN) or
        ``cn.drug_code_not_mapped`` (the GTIN carries China codes, but not this drug code)."""
        code = cn_code_in_serial(serial)
        if code is None:
            return
        mapped = self._mapping(code.drug_id)
        if mapped is not None and mapped != gtin:
            raise CustodyViolation(
                f"China code {serial}: drug code {code.drug_id} is mapped to GTIN {mapped}, "
                f"not {gtin}",
                rule="cn.drug_code_other_product",
            )
        if mapped is None and self._has_codes(gtin):
            raise CustodyViolation(
                f"China code {serial}: drug code {code.drug_id} is not mapped to GTIN {gtin}; "
                "register it first (POST /api/v1/products/cn-codes)",
                rule="cn.drug_code_not_mapped",
            )

    def _mapping(self, drug_code: str) -> str | None:
        if drug_code not in self._mapped_to:
            row = cn_store.get_drug_code(session=self._session, drug_code=drug_code)
            self._mapped_to[drug_code] = None if row is None else row.gtin
        return self._mapped_to[drug_code]

    def _has_codes(self, gtin: str) -> bool:
        if gtin not in self._gtin_has_codes:
            found = cn_store.gtins_with_drug_codes(session=self._session, gtins=[gtin])
            self._gtin_has_codes[gtin] = gtin in found
        return self._gtin_has_codes[gtin]


def verify_cn_code(
    *,
    session: Session,
    code: str,
    today: dt.date,
    base_url: str,
    temperature: TemperaturePolicy | None = None,
) -> CnVerifyPublic:
    """The verdict and provable path of the pack carrying China code ``code``.

    An unmapped drug code or an uncommissioned pack is ``unknown``, never an error. Raises
    ``InvalidInput`` (``cn.bad_code``) when ``code`` is not 20 digits.
    """
    parsed = parse_cn_drug_code(code)
    mapping = cn_store.get_drug_code(session=session, drug_code=parsed.drug_id)
    cn = _code_public(parsed, None if mapping is None else mapping.gtin)
    if mapping is None:
        checkpoint = ledger.latest_checkpoint(session.connection())
        return CnVerifyPublic(
            verdict=Verdict.UNKNOWN,
            reasons=[f"no manufacturer has registered drug code {parsed.drug_id} in this log"],
            unit=None,
            checkpoint=checkpoint.note if checkpoint else None,
            events=[],
            cn=cn,
        )
    answer = verify_unit(
        session=session,
        gtin=mapping.gtin,
        serial=parsed.unit_serial,
        today=today,
        base_url=base_url,
        temperature=temperature,
    )
    return CnVerifyPublic(**dict(answer), cn=cn)


def _code_public(code: ChinaDrugCode, gtin: str | None) -> CnCodePublic:
    return CnCodePublic(
        code=code.code,
        drug_code=code.drug_id,
        pack_serial=code.serial,
        agency_check=code.agency_check,
        gtin=gtin,
        check_note=code.check_note,
    )
