"""The FHIR R4 interface through a real server, as a hospital system would use it."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient

from medtrace.demo import GTIN
from medtrace.fhir.ids import unit_id
from support.chain import EXPIRY, LOT, Chain, new_serial

FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def path(chain: Chain) -> dict[str, str]:
    """Two units in the pharmacy, one of them dispensed; one unit still at the maker."""
    dispensed, stocked, made = new_serial(), new_serial(), new_serial()
    chain.to_pharmacy(dispensed, stocked)
    chain.commission(made)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, dispensed)])
    return {"dispensed": dispensed, "stocked": stocked, "made": made}


def fhir(chain: Chain, url: str, **params: str) -> httpx.Response:
    response = httpx.get(f"{chain.server.url}/fhir/{url}", params=params)
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return response


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate with the FHIR models (a second time: the server already built it with them)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    valid(bundle)
    assert bundle["type"] == "searchset"
    return [valid(e["resource"]) for e in bundle.get("entry", [])]


def test_the_capability_statement_lists_every_resource(chain: Chain) -> None:
    statement = valid(fhir(chain, "metadata").json())
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    assert served == {
        "Device",
        "Medication",
        "MedicationDispense",
        "SupplyDelivery",
        "Provenance",
        "Organization",
        "Location",
    }
    assert statement["fhirVersion"] == "4.0.1"


def test_a_device_found_by_its_udi_carries_what_custody_says(
    chain: Chain, path: dict[str, str]
) -> None:
    hri = f"(01){GTIN}(17){EXPIRY:%y%m%d}(10){LOT}(21){path['dispensed']}"
    by_hri = entries(fhir(chain, "Device", **{"udi-carrier": hri}).json())
    raw = f"01{GTIN}17{EXPIRY:%y%m%d}10{LOT}\x1d21{path['stocked']}"
    by_aidc = entries(fhir(chain, "Device", **{"udi-carrier": raw}).json())

    assert len(by_hri) == 1 and len(by_aidc) == 1
    device = by_hri[0]
    assert device["udiCarrier"][0]["deviceIdentifier"] == GTIN
    assert device["udiCarrier"][0]["carrierHRF"] == hri
    aidc = base64.b64decode(device["udiCarrier"][0]["carrierAIDC"]).decode()
    assert aidc == f"01{GTIN}17{EXPIRY:%y%m%d}10{LOT}\x1d21{path['dispensed']}"
    assert (device["serialNumber"], device["lotNumber"]) == (path["dispensed"], LOT)
    assert device["expirationDate"] == EXPIRY.isoformat()
    assert device["status"] == "inactive", "a dispensed unit is out of circulation"
    assert by_aidc[0]["status"] == "active"
    assert by_aidc[0]["owner"]["reference"] == f"Organization/{chain.pharmacy.gln}"


def test_devices_by_udi_di_and_by_lot_are_the_units_of_the_log(
    chain: Chain, path: dict[str, str]
) -> None:
    serials = {
        d["serialNumber"]
        for d in entries(fhir(chain, "Device", **{"lot-number": LOT}, _count="500").json())
    }
    assert set(path.values()) <= serials
    read = valid(fhir(chain, f"Device/{unit_id(GTIN, path['made'])}").json())
    assert read["owner"]["reference"] == f"Organization/{chain.maker.gln}"
    assert entries(fhir(chain, "Device", **{"udi-di": "09999999999994"}).json()) == []


def test_a_lot_is_a_medication_with_its_batch(chain: Chain, path: dict[str, str]) -> None:
    medications = entries(fhir(chain, "Medication", **{"lot-number": LOT}).json())
    assert [m["batch"] for m in medications] == [
        {"lotNumber": LOT, "expirationDate": EXPIRY.isoformat()}
    ]
    assert medications[0]["code"]["coding"][0] == {
        "system": "https://www.gs1.org/gtin",
        "code": GTIN,
    }


def test_dispenses_deliveries_and_provenance_follow_the_custody_path(
    chain: Chain, path: dict[str, str]
) -> None:
    today = fhir(chain, "MedicationDispense", whenhandedover=f"ge{EXPIRY.replace(year=2000)}")
    dispenses = entries(today.json())
    ours = [d for d in dispenses if d["id"] in _event_ids(chain, path["dispensed"], "dispense")]
    assert len(ours) == 1
    assert ours[0]["performer"][0]["actor"]["reference"] == f"Organization/{chain.pharmacy.gln}"
    assert "subject" not in ours[0], "no patient data, ever"
    none_yet = fhir(chain, "MedicationDispense", whenhandedover="lt2000-01-01").json()
    assert entries(none_yet) == []

    device = f"Device/{unit_id(GTIN, path['dispensed'])}"
    provenance = entries(fhir(chain, "Provenance", target=device, _count="50").json())
    assert [p["activity"]["text"] for p in provenance] == [
        "commission",
        "ship",
        "receive",
        "ship",
        "receive",
        "dispense",
    ]
    signed = httpx.get(
        f"{chain.server.url}{_verify_path(path['dispensed'])}",
        headers={"Accept": "application/json"},
    ).json()
    assert [p["entity"][0]["what"]["identifier"]["value"] for p in provenance] == [
        str(e["leaf_index"]) for e in signed["events"]
    ]
    receipt_id = provenance[2]["id"]
    delivery = valid(fhir(chain, f"SupplyDelivery/{receipt_id}").json())
    assert delivery["supplier"]["reference"] == f"Organization/{chain.maker.gln}"
    assert delivery["destination"]["reference"] == f"Location/{chain.hub.gln}"


def test_organizations_and_locations_come_from_glns(chain: Chain, path: dict[str, str]) -> None:
    pharmacy = valid(fhir(chain, f"Organization/{chain.pharmacy.gln}").json())
    place = valid(fhir(chain, f"Location/{chain.pharmacy.gln}").json())
    assert pharmacy["name"] == place["name"] == "Ruijin Hospital Pharmacy"
    assert place["managingOrganization"]["reference"] == f"Organization/{chain.pharmacy.gln}"


def test_searches_page_with_next_links(chain: Chain, path: dict[str, str]) -> None:
    first = fhir(chain, "Device", _count="2").json()
    assert len(first["entry"]) == 2 and first["total"] >= 3
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = httpx.get(next_url).json()
    assert {e["resource"]["id"] for e in second["entry"]}.isdisjoint(
        {e["resource"]["id"] for e in first["entry"]}
    )


@pytest.mark.parametrize(
    ("url", "params", "status", "rule"),
    [
        ("Device/nonsense", {}, 404, "fhir.bad_id"),
        (f"Device/{GTIN}-NOSUCHSERIAL", {}, 404, "fhir.not_found"),
        ("Patient", {}, 404, "fhir.unknown_type"),
        ("Device", {"name": "aspirin"}, 422, "fhir.unknown_parameter"),
        ("Device", {"udi-carrier": "(01)123"}, 422, "fhir.bad_udi"),
        ("MedicationDispense", {"whenhandedover": "ge-yesterday"}, 422, "fhir.bad_date"),
        ("Device", {"_count": "0"}, 422, "fhir.bad_paging"),
        ("Provenance", {"target": "Patient/1"}, 422, "fhir.bad_reference"),
    ],
)
def test_errors_are_operation_outcomes(
    chain: Chain, url: str, params: dict[str, str], status: int, rule: str
) -> None:
    response = fhir(chain, url, **params)
    outcome = valid(response.json())
    assert response.status_code == status
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == rule


def test_a_generic_fhir_client_finds_the_unit_and_its_history(
    chain: Chain, path: dict[str, str]
) -> None:
    client = SyncFHIRClient(f"{chain.server.url}/fhir")
    devices = client.resources("Device").search(**{"udi-di": GTIN, "lot-number": LOT}).fetch_all()
    assert path["stocked"] in {d["serialNumber"] for d in devices}
    target = f"Device/{unit_id(GTIN, path['stocked'])}"
    history = client.resources("Provenance").search(target=target).fetch()
    assert len(history) == 5


def _verify_path(serial: str) -> str:
    return f"/01/{GTIN}/21/{serial}"


def _event_ids(chain: Chain, serial: str, kind: str) -> set[str]:
    answer = httpx.get(
        f"{chain.server.url}{_verify_path(serial)}", headers={"Accept": "application/json"}
    ).json()
    return {e["event_id"] for e in answer["events"] if e["type"] == kind}
