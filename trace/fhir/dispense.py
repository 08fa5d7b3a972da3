"""A hospital information system records a dispense: FHIR R4 ``MedicationDispense`` in.

The HIS posts the resource with the pharmacy's API token, as for EPCIS capture. It is
validated with the ``fhir.resources`` models, and becomes a medtrace ``dispense`` event that
goes through the same custody rules and the same transaction as a station's dispense: a
dispense at a non-pharmacy, of a unit the pharmacy does not hold, or of a unit already
dispensed is refused with its rule and writes nothing.

**The unit.** One resource is one serialised pack (``quantity`` 1, or none). FHIR R4 has no
serial number on a Medication, so the pack is named the way its label names it: a contained
Medication (``medicationReference: {"reference": "#pack"}``) whose ``identifier`` holds the
pack's GS1 Digital Link URI (system ``urn:ietf:rfc:3986``, any host: what the QR code on the
pack says, ``https://…/01/{gtin}/10/{lot}/21/{serial}``). Its ``code`` may carry the GTIN
(system ``https://www.gs1.org/gtin``) and its ``batch`` the lot and expiry; where present
they must agree with the URI and with what was commissioned.

**No patient data.** The ledger is public, so elements that describe the patient or the
staff (``subject``, ``receiver``, ``context``, ``dosageInstruction``, ``note``, ``text``, a
``performer`` that is not an Organization, ...) are refused (``fhir.personal_data``) rather
than silently dropped: the HIS learns that medtrace never takes them, and what the ledger
keeps is exactly what was sent. Elements medtrace does not record are refused too
(``fhir.unsupported_element``), so nothing sent is mistaken for recorded.

**The leaf.** As for EPCIS capture, the event is authenticated by the token, not a station
key: its leaf is ``{"event", "fhir": <the resource as sent>, "participant": <GLN>}``
(``medtrace.services.capture.token_authenticated``) and the verify JSON marks it
``"authenticated_by": "participant_token"``. An identical resource posted again is the same
leaf and the same event: it is answered with the recorded dispense and writes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.medicationdispense import MedicationDispense
from pydantic import ValidationError
from sqlmodel import Session

from medtrace.errors import InvalidInput
from medtrace.fhir.resources import GTIN_SYSTEM
from medtrace.models import EventType, Participant
from medtrace.protocol.identifiers import GS1Data, parse_digital_link
from medtrace.services.capture import Authenticated, capture_authenticated, token_authenticated
from medtrace.store import units as unit_store

MAX_RESOURCE_BYTES = 64 * 1024
URI_SYSTEM = "urn:ietf:rfc:3986"
RECORDED_ELEMENTS = frozenset(
    {
        "resourceType",
        "id",
        "meta",
        "identifier",
        "status",
        "category",
        "type",
        "quantity",
        "contained",
        "medicationReference",
        "performer",
        "location",
        "whenPrepared",
        "whenHandedOver",
    }
)
PERSONAL_ELEMENTS = frozenset(
    {
        "subject",
        "receiver",
        "context",
        "authorizingPrescription",
        "supportingInformation",
        "dosageInstruction",
        "note",
        "text",
        "eventHistory",
    }
)


@dataclass(frozen=True)
class RecordedDispense:
    """The dispense event a posted resource became; ``created`` is False for a retry."""

    event_id: str
    created: bool


def _invalid(message: str, rule: str = "fhir.invalid") -> InvalidInput:
    return InvalidInput(message, rule=rule)


def parse_resource(body: bytes) -> dict[str, Any]:
    """The posted MedicationDispense, checked element by element and by the FHIR models."""
    if len(body) > MAX_RESOURCE_BYTES:
        raise _invalid(f"the resource has {len(body)} bytes; at most {MAX_RESOURCE_BYTES}")
    try:
        resource = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _invalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(resource, dict) or resource.get("resourceType") != "MedicationDispense":
        raise _invalid("post a MedicationDispense resource", rule="fhir.wrong_type")
    _check_elements(resource)
    try:
        MedicationDispense.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "MedicationDispense"
        raise _invalid(f"{where}: {first['msg']}") from exc
    quantity = (resource.get("quantity") or {}).get("value", 1)
    if quantity != 1:
        raise _invalid(
            f"a MedicationDispense here is one serialised pack, not {quantity}: post one per pack",
            rule="fhir.one_pack",
        )
    if resource.get("status") != "completed":
        raise _invalid(
            f"medtrace records handed-over dispenses (status 'completed'), not "
            f"{resource.get('status')!r}",
            rule="fhir.dispense_status",
        )
    return resource


def _check_elements(resource: Mapping[str, Any]) -> None:
    personal = sorted(PERSONAL_ELEMENTS & resource.keys())
    performers = resource.get("performer") or []
    if any(not _is_organization(p) for p in performers if isinstance(p, dict)):
        personal.append("performer (other than an Organization)")
    if personal:
        raise _invalid(
            "medtrace stores no patient or staff data (its ledger is public): leave out "
            + ", ".join(personal),
            rule="fhir.personal_data",
        )
    contained = resource.get("contained") or []
    if not isinstance(contained, list) or any(
        not isinstance(c, dict) or c.get("resourceType") != "Medication" for c in contained
    ):  # checked before the FHIR models, which fail on an unknown resourceType
        raise _invalid(
            "contained holds only the dispensed Medication", rule="fhir.unsupported_element"
        )
    unsupported = sorted(resource.keys() - RECORDED_ELEMENTS)
    if unsupported:
        raise _invalid(
            f"medtrace does not record {', '.join(unsupported)}; it records "
            f"{', '.join(sorted(RECORDED_ELEMENTS))}",
            rule="fhir.unsupported_element",
        )


def _is_organization(performer: Mapping[str, Any]) -> bool:
    actor = performer.get("actor")
    if not isinstance(actor, dict) or set(actor) - {"reference", "type", "display"}:
        return False
    reference = actor.get("reference")
    return isinstance(reference, str) and reference.startswith("Organization/")


def _contained_medication(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = (resource.get("medicationReference") or {}).get("reference")
    contained = resource.get("contained") or []
    medication: Mapping[str, Any] | None = next(
        (c for c in contained if isinstance(reference, str) and f"#{c.get('id')}" == reference),
        None,
    )
    if medication is None:
        raise _invalid(
            "name the pack with medicationReference to a contained Medication ('#id')",
            rule="fhir.unit_unnamed",
        )
    return medication


def _pack(medication: Mapping[str, Any]) -> GS1Data:
    """The pack's GS1 data from the Medication's Digital Link identifier, cross-checked with
    its code (GTIN) and batch (lot, expiry)."""
    links = [
        i["value"]
        for i in medication.get("identifier") or []
        if i.get("system") == URI_SYSTEM and isinstance(i.get("value"), str)
    ]
    if len(links) != 1:
        raise _invalid(
            f"the Medication needs one identifier with system {URI_SYSTEM}: the pack's GS1 "
            "Digital Link URI (…/01/{gtin}/21/{serial})",
            rule="fhir.unit_unnamed",
        )
    pack = parse_digital_link(links[0])
    if pack.gtin is None or pack.serial is None:
        raise _invalid(
            f"{links[0]} names no serialised unit (AI 01 and 21)", rule="fhir.unit_unnamed"
        )
    codes = {
        c.get("code")
        for c in (medication.get("code") or {}).get("coding") or []
        if c.get("system") == GTIN_SYSTEM
    }
    if codes and codes != {pack.gtin}:
        raise _mismatch("GTIN", ", ".join(sorted(map(str, codes))), pack.gtin)
    batch = medication.get("batch") or {}
    lot = batch.get("lotNumber")
    expiry = _batch_expiry(batch.get("expirationDate"))
    if lot is not None and pack.lot is not None and lot != pack.lot:
        raise _mismatch("lot", lot, pack.lot)
    if expiry is not None and pack.expiry is not None and expiry != pack.expiry:
        raise _mismatch("expiry", expiry, pack.expiry)
    return dataclasses.replace(pack, lot=pack.lot or lot, expiry=pack.expiry or expiry)


def _batch_expiry(text: object) -> dt.date | None:
    """The day the batch expires. FHIR allows a partial date (``2030``, ``2030-01``), but a
    pack's expiry is checked against the day it was commissioned with, which a year or a
    month cannot confirm: only a full date (or a dateTime) is accepted."""
    if text is None:
        return None
    if isinstance(text, str) and len(text) >= len("YYYY-MM-DD"):
        with contextlib.suppress(ValueError):
            return dt.date.fromisoformat(text[:10])
    raise _invalid(
        f"batch.expirationDate {text!r} must name the day (YYYY-MM-DD): the pack's expiry "
        "is checked against the day it was commissioned with",
        rule="fhir.partial_expiry",
    )


def _mismatch(name: str, said: object, linked: object) -> InvalidInput:
    return _invalid(
        f"the Medication's {name} {said} differs from its Digital Link's {linked}",
        rule="fhir.unit_mismatch",
    )


def _place(resource: Mapping[str, Any], participant: Participant) -> str:
    """The GLN where the unit was handed over: the Location named, else the pharmacy's."""
    reference = (resource.get("location") or {}).get("reference")
    if reference is None:
        return participant.gln
    kind, _, gln = str(reference).partition("/")
    if kind != "Location" or not gln:
        raise _invalid("location is a reference to Location/{GLN}", rule="fhir.bad_reference")
    return gln


def record_dispense(*, session: Session, participant: Participant, body: bytes) -> RecordedDispense:
    """Record the dispense a HIS posted, under the custody rules; all or nothing.

    Raises ``InvalidInput`` for a resource medtrace cannot record (its rule names why),
    ``CustodyViolation`` as a station's dispense would, ``Conflict`` on a concurrent move.
    """
    resource = parse_resource(body)
    pack = _pack(_contained_medication(resource))
    when = resource.get("whenHandedOver")
    if not isinstance(when, str):
        raise _invalid("whenHandedOver says when the pack was handed over", rule="fhir.no_time")
    event = {
        "type": EventType.DISPENSE.value,
        "gtin": pack.gtin,
        "serial": pack.serial,
        "gln": _place(resource, participant),
        "event_time": when,
    }
    item = token_authenticated(
        source="fhir", sent=resource, event=event, participant_gln=participant.gln
    )

    def check() -> tuple[list[Authenticated], None]:
        _check_commissioned_as(session, pack)
        return [item], None

    (result,) = capture_authenticated(session=session, participant=participant, check=check)
    return RecordedDispense(event_id=result.event_id, created=not result.duplicate)


def _check_commissioned_as(session: Session, pack: GS1Data) -> None:
    """The lot and expiry the HIS read from the pack must be the ones commissioned (a
    relabelled or cloned code otherwise); an unknown unit is left to the custody rules."""
    assert pack.gtin is not None and pack.serial is not None
    unit = unit_store.get_unit(session=session, gtin=pack.gtin, serial=pack.serial)
    if unit is None:
        return
    if pack.lot is not None and pack.lot != unit.lot:
        raise _invalid(
            f"the pack says lot {pack.lot}; the unit was commissioned in lot {unit.lot}",
            rule="fhir.unit_mismatch",
        )
    if pack.expiry is not None and pack.expiry != unit.expiry:
        raise _invalid(
            f"the pack says expiry {pack.expiry}; the unit was commissioned with {unit.expiry}",
            rule="fhir.unit_mismatch",
        )
