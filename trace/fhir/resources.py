"""Build FHIR R4 resources from medtrace's records, through the ``fhir.resources`` models.

Each builder takes table rows and returns the resource as JSON-ready data; constructing the
model on the way means an invalid resource fails here, in medtrace, not in a hospital.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from fhir.resources.R4B.device import Device
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.supplydelivery import SupplyDelivery

from medtrace.fhir.ids import lot_id, unit_id
from medtrace.models import Event, EventType, Participant, Unit, UnitState

GTIN_SYSTEM = "https://www.gs1.org/gtin"
GLN_SYSTEM = "https://www.gs1.org/gln"
GS1_DI_ISSUER = "http://hl7.org/fhir/NamingSystem/gs1-di"
EVENT_SYSTEM = "urn:medtrace:event"
# ASTM E1762-95 "Source Signature": the station that recorded the event signed it.
SOURCE_SIGNATURE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.14"}
_INACTIVE_STATES = frozenset({UnitState.DISPENSED, UnitState.DESTROYED, UnitState.EXPORTED})


def _json(resource: Resource) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resource.model_dump_json(exclude_none=True))
    return data


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def gs1_hri(unit: Unit) -> str:
    """The unit's GS1 human-readable interpretation, the form FHIR's carrierHRF expects."""
    return f"(01){unit.gtin}(17){unit.expiry:%y%m%d}(10){unit.lot}(21){unit.serial}"


def gs1_element_string(unit: Unit) -> str:
    """The data a scanner reads from the unit's barcode (FNC1 as GS after the lot)."""
    return f"01{unit.gtin}17{unit.expiry:%y%m%d}10{unit.lot}\x1d21{unit.serial}"


def device(unit: Unit) -> dict[str, Any]:
    """A serialised unit as a FHIR Device with its UDI carrier."""
    return _json(
        Device.model_validate(
            {
                "resourceType": "Device",
                "id": unit_id(unit.gtin, unit.serial),
                "udiCarrier": [
                    {
                        "deviceIdentifier": unit.gtin,
                        "issuer": GS1_DI_ISSUER,
                        "carrierHRF": gs1_hri(unit),
                        "carrierAIDC": base64.b64encode(gs1_element_string(unit).encode()).decode(),
                        "entryType": "barcode",
                    }
                ],
                "status": "inactive" if unit.state in _INACTIVE_STATES else "active",
                "lotNumber": unit.lot,
                "serialNumber": unit.serial,
                "expirationDate": unit.expiry.isoformat(),
                "owner": {"reference": f"Organization/{unit.holder_gln}"},
                "location": {"reference": f"Location/{unit.holder_gln}"},
            }
        )
    )


def medication(gtin: str, lot: str, expiry: dt.date) -> dict[str, Any]:
    """One lot of a product as a FHIR Medication with its batch."""
    return _json(
        Medication.model_validate(
            {
                "resourceType": "Medication",
                "id": lot_id(gtin, lot),
                "code": {"coding": [{"system": GTIN_SYSTEM, "code": gtin}]},
                "status": "active",
                "batch": {"lotNumber": lot, "expirationDate": expiry.isoformat()},
            }
        )
    )


def _event_identifier(event: Event) -> list[dict[str, str]]:
    return [{"system": EVENT_SYSTEM, "value": event.event_id}]


def _unit(event: Event) -> tuple[str, str]:
    """The unit an event names (the service exports only events naming a unit, not a case)."""
    assert event.gtin is not None and event.serial is not None
    return event.gtin, event.serial


def medication_dispense(event: Event, lot: str) -> dict[str, Any]:
    """A dispense event; it names the pharmacy and the time, never a patient."""
    return _json(
        MedicationDispense.model_validate(
            {
                "resourceType": "MedicationDispense",
                "id": event.event_id,
                "identifier": _event_identifier(event),
                "status": "completed",
                "medicationReference": {"reference": f"Medication/{lot_id(_unit(event)[0], lot)}"},
                "performer": [{"actor": {"reference": f"Organization/{event.gln}"}}],
                "location": {"reference": f"Location/{event.gln}"},
                "quantity": {"value": 1, "unit": "pack"},
                "whenHandedOver": _instant(event.event_time),
            }
        )
    )


def supply_delivery(event: Event, supplier_gln: str | None) -> dict[str, Any]:
    """A receipt as a FHIR SupplyDelivery of the unit, from whoever shipped it."""
    supplier = {"supplier": {"reference": f"Organization/{supplier_gln}"}} if supplier_gln else {}
    return _json(
        SupplyDelivery.model_validate(
            {
                "resourceType": "SupplyDelivery",
                "id": event.event_id,
                "identifier": _event_identifier(event),
                "status": "completed",
                "suppliedItem": {
                    "quantity": {"value": 1},
                    "itemReference": {"reference": f"Device/{unit_id(*_unit(event))}"},
                },
                "occurrenceDateTime": _instant(event.event_time),
                "destination": {"reference": f"Location/{event.gln}"},
                **supplier,
            }
        )
    )


def provenance(event: Event, leaf: bytes, ledger_url: str) -> dict[str, Any]:
    """Who did what when, with the ledger leaf that proves it and the station's signature."""
    envelope = json.loads(leaf)
    targets = [{"reference": f"Device/{unit_id(*_unit(event))}"}]
    if event.type is EventType.DISPENSE:
        targets.append({"reference": f"MedicationDispense/{event.event_id}"})
    elif event.type is EventType.RECEIVE:
        targets.append({"reference": f"SupplyDelivery/{event.event_id}"})
    organization = {"reference": f"Organization/{event.gln}"}
    return _json(
        Provenance.model_validate(
            {
                "resourceType": "Provenance",
                "id": event.event_id,
                "target": targets,
                "recorded": _instant(event.recorded_at),
                "occurredDateTime": _instant(event.event_time),
                "activity": {"text": event.type.value},
                "location": {"reference": f"Location/{event.gln}"},
                "agent": [{"who": organization, "onBehalfOf": organization}],
                "entity": [
                    {
                        "role": "source",
                        "what": {
                            "identifier": {"system": ledger_url, "value": str(event.leaf_index)},
                            "display": f"ledger leaf {event.leaf_index} (RFC 9162 log)",
                        },
                    }
                ],
                "signature": [
                    {
                        "type": [SOURCE_SIGNATURE],
                        "when": _instant(event.event_time),
                        "who": {"display": f"station {event.station_id}"},
                        "onBehalfOf": organization,
                        "targetFormat": "application/json",
                        "sigFormat": "application/octet-stream",
                        "data": envelope["signature"],
                    }
                ]
                # EPCIS capture on a participant's token: no station signature in the leaf.
                if "signature" in envelope
                else None,
            }
        )
    )


def organization(participant: Participant) -> dict[str, Any]:
    """A participant as a FHIR Organization, identified by its GLN."""
    return _json(
        Organization.model_validate(
            {
                "resourceType": "Organization",
                "id": participant.gln,
                "identifier": [{"system": GLN_SYSTEM, "value": participant.gln}],
                "active": True,
                "type": [{"text": participant.role.value}],
                "name": participant.name,
                "address": [{"city": participant.city}] if participant.city else None,
            }
        )
    )


def location(participant: Participant) -> dict[str, Any]:
    """A participant's place as a FHIR Location (the same GLN)."""
    return _json(
        Location.model_validate(
            {
                "resourceType": "Location",
                "id": participant.gln,
                "identifier": [{"system": GLN_SYSTEM, "value": participant.gln}],
                "status": "active",
                "name": participant.name,
                "address": {"city": participant.city} if participant.city else None,
                "managingOrganization": {"reference": f"Organization/{participant.gln}"},
            }
        )
    )
