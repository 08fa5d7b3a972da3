"""medtrace events as EPCIS 2.0: the official JSON schema, CBV 2.0 event hashes checked
against GS1's reference implementation, EPC URNs and Digital Link URIs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from epcis_event_hash_generator import hash_generator
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json

from medtrace.epcis.document import epcis_document, recall_to_epcis, to_epcis
from medtrace.epcis.epc import Epc, parse_epc
from medtrace.errors import InvalidInput
from medtrace.models import EventType
from medtrace.schemas.capture import SignedEvent
from support.epcis import SCHEMA

HERE = Path(__file__).parent
GTIN = "09521234000112"
MAKER, HUB = "9521234000006", "9525678000004"
CASE = "395212340000000014"


def signed(kind: EventType, **fields: Any) -> SignedEvent:
    target = {} if "sscc" in fields else {"gtin": GTIN, "serial": "X7K2/M9"}
    return SignedEvent.model_validate(
        {"type": kind, **target, "gln": MAKER, "event_time": "2026-11-22T10:00:00Z",
         "station_id": "st-1", **fields}
    )  # fmt: skip


EVENTS = [
    signed(EventType.COMMISSION, lot="00420", expiry="2028-01-31"),
    signed(EventType.PACK, sscc=CASE, children=[{"gtin": GTIN, "serial": s} for s in "AB"]),
    signed(EventType.UNPACK, sscc=CASE),
    signed(EventType.SHIP, destination_gln=HUB),
    signed(EventType.RETURN, destination_gln=HUB),
    signed(EventType.RECEIVE),
    signed(EventType.STORE, location_gln="9525678000011"),
    signed(EventType.DISPENSE),
    signed(EventType.DESTROY),
    signed(EventType.EXPORT),
    signed(EventType.DECOMMISSION),
    signed(EventType.QUARANTINE),
    signed(EventType.RELEASE),
]  # fmt: skip
TIMES = ["2026-11-22T10:00:00Z", "2026-11-22T12:00:00.1235+02:00", "2026-11-22T04:30:00.999-05:30"]


def _document(times: list[str]) -> dict[str, Any]:
    created = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    return epcis_document([to_epcis(e, t) for e in EVENTS for t in times], created=created)


def test_every_event_type_exports_as_valid_epcis_2() -> None:
    document = _document(TIMES)
    jsonschema.validate(document, SCHEMA)
    kinds = {
        (e["type"], e["bizStep"], e["disposition"]) for e in document["epcisBody"]["eventList"]
    }
    assert len(kinds) == len(EVENTS), "each medtrace type has its own EPCIS shape"


# The reference implementation reads its bundled JSON-LD context with a deprecated
# importlib.resources call; the warning is theirs.
REFERENCE_WARNING = "ignore:open_text is deprecated:DeprecationWarning"


@pytest.mark.filterwarnings(REFERENCE_WARNING)
def test_event_ids_are_the_cbv_2_event_hash_of_gs1s_reference_implementation() -> None:
    document = _document(TIMES)
    reference = hash_generator.epcis_hashes_from_events(
        event_list_from_epcis_document_json(json.loads(json.dumps(document)))
    )
    ours = [e["eventID"] for e in document["epcisBody"]["eventList"]]
    assert ours == reference
    assert len(set(ours)) == len(ours)


@pytest.mark.filterwarnings(REFERENCE_WARNING)
def test_a_recall_is_an_epcis_2_event_about_the_lot_with_the_reference_hash() -> None:
    recalls = [recall_to_epcis(gtin=GTIN, lot="L/1 A", gln=MAKER, event_time=t) for t in TIMES]
    document = epcis_document(recalls, created=dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
    jsonschema.validate(document, SCHEMA)
    assert recalls[0]["disposition"] == "recalled"
    assert recalls[0]["quantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{GTIN}/10/L%2F1%20A"}
    ]
    reference = hash_generator.epcis_hashes_from_events(
        event_list_from_epcis_document_json(json.loads(json.dumps(document)))
    )
    assert [e["eventID"] for e in recalls] == reference


def test_a_change_in_any_field_changes_the_hash() -> None:
    base = to_epcis(signed(EventType.SHIP, destination_gln=HUB), TIMES[0])
    other = to_epcis(signed(EventType.SHIP, destination_gln="9529012000002"), TIMES[0])
    later = to_epcis(signed(EventType.SHIP, destination_gln=HUB), "2026-11-22T10:00:00.001Z")
    assert len({base["eventID"], other["eventID"], later["eventID"]}) == 3


@pytest.mark.parametrize(
    ("uri", "epc"),
    [
        ("urn:epc:id:sgtin:9521234.000011.X7K2M9", Epc(gtin=GTIN, serial="X7K2M9")),
        ("urn:epc:id:sgtin:9521234.000011.A%2FB", Epc(gtin=GTIN, serial="A/B")),
        # TDS escapes " % & / < > ? and leaves the rest of set 82 as is, '.' included
        (
            "urn:epc:id:sgtin:9521234.000011.!%22%25%26'()*+,-.%2F:;%3C=%3E%3F_",
            Epc(gtin=GTIN, serial="!\"%&'()*+,-./:;<=>?_"),
        ),
        ("https://id.gs1.org/01/09521234000112/21/A%2FB", Epc(gtin=GTIN, serial="A/B")),
        ("https://example.com/01/09521234000112/10/L1/21/S1", Epc(gtin=GTIN, serial="S1")),
        ("urn:epc:id:sscc:9521234.3000000001", Epc(sscc=CASE)),
        ("https://id.gs1.org/00/395212340000000014", Epc(sscc=CASE)),
        ("urn:epc:id:sgln:9521234.00000.0", Epc(gln=MAKER)),
        ("https://id.gs1.org/414/9521234000006", Epc(gln=MAKER)),
    ],
)
def test_epc_urns_and_digital_links_name_the_same_keys(uri: str, epc: Epc) -> None:
    assert parse_epc(uri) == epc


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        ("urn:epc:id:grai:9521234.00001.1", "epcis.bad_epc"),
        ("urn:epc:id:sgtin:9521234.00001", "epcis.bad_epc"),
        ("https://id.gs1.org/01/09521234000113/21/X", "gs1.bad_check_digit"),
        ("https://id.gs1.org/01/09521234000112", "epcis.bad_epc"),
        ("ftp://x/01/09521234000112/21/X", "epcis.bad_epc"),
        ("urn:epc:id:sgtin:9521234.000011.SER IAL", "gs1.bad_character"),
    ],
)
def test_non_gs1_epcs_are_refused_with_their_rule(uri: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_epc(uri)
    assert refused.value.rule == rule
