"""A hospital system posts FHIR R4 MedicationDispense resources, through a real server."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from independent_checker import check_url
from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path
from support.chain import Chain, new_serial
from support.fhir import dispense_of, now

FHIR_JSON = "application/fhir+json"


def post(chain: Chain, token: str | None, resource: dict[str, Any]) -> httpx.Response:
    headers = {"Content-Type": FHIR_JSON} | ({"Authorization": f"Bearer {token}"} if token else {})
    return httpx.post(
        f"{chain.server.url}/fhir/MedicationDispense", content=json.dumps(resource), headers=headers
    )


def verify_json(chain: Chain, serial: str) -> dict[str, Any]:
    response = httpx.get(
        chain.server.url + digital_link_path(GTIN, serial), headers={"Accept": "application/json"}
    )
    body: dict[str, Any] = response.json()
    return body


def test_a_posted_dispense_is_recorded_on_the_pharmacys_token(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    pharmacy = {"reference": f"Organization/{chain.pharmacy.gln}", "display": "Pharmacy"}
    performer = [{"actor": pharmacy}]
    sent = dispense_of(
        serial, performer=performer, location={"reference": f"Location/{chain.pharmacy.gln}"}
    )

    response = post(chain, chain.pharmacy.token, sent)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    created = response.json()
    get_fhir_model_class("MedicationDispense").model_validate(created)
    assert response.headers["location"] == (
        f"{chain.server.url}/fhir/MedicationDispense/{created['id']}"
    )
    assert httpx.get(response.headers["location"]).json() == created
    assert created["performer"][0]["actor"]["reference"] == f"Organization/{chain.pharmacy.gln}"
    assert "subject" not in created
    answer = verify_json(chain, serial)
    assert answer["unit"]["state"] == "dispensed"
    last = answer["events"][-1]
    assert (last["type"], last["event_id"]) == ("dispense", created["id"])
    assert (last["authenticated_by"], last["station_id"]) == ("participant_token", None)
    leaf = json.loads(base64.b64decode(last["leaf"]))
    assert leaf == {
        "event": {
            "type": "dispense",
            "gtin": GTIN,
            "serial": serial,
            "gln": chain.pharmacy.gln,
            "event_time": sent["whenHandedOver"],
        },
        "fhir": sent,
        "participant": chain.pharmacy.gln,
    }
    provenance = httpx.get(f"{chain.server.url}/fhir/Provenance/{created['id']}").json()
    assert "signature" not in provenance, "no station signed it"
    chain.server.wait_for_checkpoint(chain.server.leaves())
    checks = check_url(chain.server.url + digital_link_path(GTIN, serial))
    assert [c.status for c in checks] == ["ok"] * 5 + ["unsigned"]


def test_the_same_resource_posted_again_is_the_same_dispense(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    sent = dispense_of(serial)
    first = post(chain, chain.pharmacy.token, sent)
    before = chain.server.snapshot()

    again = post(chain, chain.pharmacy.token, sent)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert chain.server.snapshot() == before


def test_a_generic_fhir_client_posts_a_dispense(chain: Chain) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    client = SyncFHIRClient(
        f"{chain.server.url}/fhir", authorization=f"Bearer {chain.pharmacy.token}"
    )

    saved = client.resource("MedicationDispense", **dispense_of(serial)).save()

    assert saved["status"] == "completed" and saved["id"]
    found = client.resources("MedicationDispense").search(_id=saved["id"]).fetch()
    assert [d["id"] for d in found] == [saved["id"]]
    with pytest.raises(OperationOutcome, match=r"custody\.final_state"):
        client.resource("MedicationDispense", **dispense_of(serial)).save()


def _not_held(chain: Chain, serial: str) -> None:
    chain.commission(serial)


def _at_the_hub(chain: Chain, serial: str) -> None:
    maker, hub = chain.maker, chain.hub
    chain.commission(serial)
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln)])
    hub.api.capture([hub.station.receive(GTIN, serial)])


def _dispensed(chain: Chain, serial: str) -> None:
    chain.to_pharmacy(serial)
    assert post(chain, chain.pharmacy.token, dispense_of(serial)).status_code == 201


PATIENT = {"subject": {"reference": "Patient/123", "display": "Zhang San"}}


@pytest.mark.parametrize(
    ("case", "status", "rule"),
    [
        ("subject", 422, "fhir.personal_data"),
        ("practitioner", 422, "fhir.personal_data"),
        ("unsupported", 422, "fhir.unsupported_element"),
        ("malformed", 422, "fhir.invalid"),
        ("not_json", 422, "fhir.invalid"),
        ("another_type", 422, "fhir.wrong_type"),
        ("in_progress", 422, "fhir.dispense_status"),
        ("two_packs", 422, "fhir.one_pack"),
        ("unnamed", 422, "fhir.unit_unnamed"),
        ("gtin_differs", 422, "fhir.unit_mismatch"),
        ("other_lot", 422, "fhir.unit_mismatch"),
        ("not_held", 409, "custody.not_holder"),
        ("twice", 409, "custody.final_state"),
        ("at_a_distributor", 409, "custody.not_a_pharmacy"),
        ("elsewhere", 409, "custody.wrong_location"),
        ("never_made", 409, "custody.unknown_unit"),
        ("no_token", 401, "auth.missing_token"),
        ("bad_token", 401, "auth.invalid_token"),
    ],
)
def test_a_refused_dispense_is_an_operation_outcome_and_writes_nothing(
    chain: Chain, case: str, status: int, rule: str
) -> None:
    serial = new_serial()
    token: str | None = chain.pharmacy.token
    resource = dispense_of(serial)
    if case in {"not_held", "never_made"}:
        if case == "not_held":
            _not_held(chain, serial)
    elif case == "twice":
        _dispensed(chain, serial)
        resource = dispense_of(serial, whenHandedOver=now())
    elif case == "at_a_distributor":
        _at_the_hub(chain, serial)
        token = chain.hub.token
    else:
        chain.to_pharmacy(serial)
    if case == "subject":
        resource |= PATIENT
    elif case == "practitioner":
        resource["performer"] = [{"actor": {"reference": "Practitioner/7", "display": "Dr Li"}}]
    elif case == "unsupported":
        resource["daysSupply"] = {"value": 7}
    elif case == "malformed":
        resource["quantity"] = {"value": "one"}
    elif case == "another_type":
        resource["resourceType"] = "MedicationRequest"
    elif case == "two_packs":
        resource["quantity"] = {"value": 2, "unit": "pack"}
    elif case == "in_progress":
        resource["status"] = "in-progress"
    elif case == "unnamed":
        resource["medicationReference"] = {"reference": "#another"}
    elif case == "gtin_differs":
        resource["contained"][0]["code"]["coding"][0]["code"] = "09521234000129"
    elif case == "other_lot":
        resource = dispense_of(serial, lot="LOT43")
    elif case == "elsewhere":
        resource["location"] = {"reference": f"Location/{chain.hub.gln}"}
    elif case == "no_token":
        token = None
    elif case == "bad_token":
        token = "not-a-token"
    before = chain.server.snapshot()

    if case == "not_json":
        response = httpx.post(
            f"{chain.server.url}/fhir/MedicationDispense",
            content=b"{not json",
            headers={"Authorization": f"Bearer {token}"},
        )
    else:
        response = post(chain, token, resource)

    outcome = response.json()
    get_fhir_model_class("OperationOutcome").model_validate(outcome)
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert (response.status_code, outcome["issue"][0]["details"]["coding"][0]["code"]) == (
        status,
        rule,
    ), outcome
    assert chain.server.snapshot() == before


def test_the_capability_statement_says_dispenses_may_be_posted(chain: Chain) -> None:
    statement = httpx.get(f"{chain.server.url}/fhir/metadata").json()
    interactions = {
        r["type"]: {i["code"] for i in r["interaction"]} for r in statement["rest"][0]["resource"]
    }
    assert "create" in interactions["MedicationDispense"]
    assert "create" not in interactions["Device"]
