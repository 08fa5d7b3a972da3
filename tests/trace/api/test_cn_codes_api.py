"""China's drug traceability codes as unit keys, through a real server on both backends:
drug codes mapped to products, commissioning, the /cn verify page, and a scan station's path
from a printed Code 128 to a signed event."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from medtrace.demo import GTIN, with_check_digit
from medtrace.labels import LABEL_4X6, LabelSheet, cn_label
from medtrace.models.cn import CnDrugCode
from medtrace.protocol.identifiers import ChinaDrugCode, parse_code
from medtrace.scanners.decode import read_code
from medtrace.scanners.errors import CaptureRefused
from support.chain import EXPIRY, LOT, Chain

MEDTRACE = Path(sys.executable).parent / "medtrace"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
#: Two more products of the demo manufacturer (company prefix 9521234), and one of another.
OWN_GTIN = "0" + with_check_digit("952123400028")
THIRD_GTIN = "0" + with_check_digit("952123400035")
OTHER_COMPANY_GTIN = "0" + with_check_digit("952567800011")


def _drug_code() -> str:
    """A fresh 7-digit drug identification code (the server is shared by the module)."""
    return f"8{secrets.randbelow(10**6):06d}"


def _code(drug_code: str) -> str:
    """A China code of that drug: 9 serial digits, 4 (agency) check digits."""
    return f"{drug_code}{secrets.randbelow(10**9):09d}{secrets.randbelow(10**4):04d}"


def _mappings(chain: Chain) -> int:
    with chain.server.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(CnDrugCode)).scalar_one()


def _refusal(call: object) -> CaptureRefused:
    with pytest.raises(CaptureRefused) as refused:
        call()  # type: ignore[operator]
    return refused.value


# --- mapping drug codes to products -----------------------------------------------------------


def test_a_manufacturer_maps_a_drug_code_to_its_product_once(chain: Chain) -> None:
    drug = _drug_code()

    created = chain.maker.api.map_cn_drug_code(drug, GTIN)
    again = chain.maker.api.map_cn_drug_code(drug, GTIN)
    read = httpx.get(f"{chain.server.url}/api/v1/products/cn-codes/{drug}")

    assert created == again == read.json()
    assert created["gtin"] == GTIN and created["manufacturer"] == chain.maker.gln
    before = _mappings(chain)
    taken = _refusal(lambda: chain.maker.api.map_cn_drug_code(drug, OWN_GTIN))
    assert (taken.status, taken.rule) == (409, "cn.drug_code_taken")
    assert GTIN in taken.message
    assert _mappings(chain) == before


@pytest.mark.parametrize(
    ("who", "drug", "gtin", "status", "rule"),
    [
        ("pharmacy", None, GTIN, 409, "cn.not_a_manufacturer"),
        ("hub", None, GTIN, 409, "cn.not_a_manufacturer"),
        ("maker", None, OTHER_COMPANY_GTIN, 409, "cn.outside_company_prefix"),
        ("maker", "81234", GTIN, 422, "cn.bad_drug_code"),
        ("maker", "８１２３４５６", GTIN, 422, "cn.bad_drug_code"),  # full-width digits
        ("maker", None, GTIN[:-1] + "9", 422, "gs1.bad_check_digit"),
    ],
)
def test_mapping_refusals_are_named_and_change_nothing(
    chain: Chain, who: str, drug: str | None, gtin: str, status: int, rule: str
) -> None:
    api = getattr(chain, who).api
    before = _mappings(chain)

    refused = _refusal(lambda: api.map_cn_drug_code(drug or _drug_code(), gtin))

    assert (refused.status, refused.rule) == (status, rule)
    assert _mappings(chain) == before


def test_reading_an_unmapped_or_malformed_drug_code_is_named(chain: Chain) -> None:
    unknown = httpx.get(f"{chain.server.url}/api/v1/products/cn-codes/{_drug_code()}")
    malformed = httpx.get(f"{chain.server.url}/api/v1/products/cn-codes/12345678")

    assert unknown.status_code == 404
    assert unknown.json()["detail"]["rule"] == "cn.unknown_drug_code"
    assert malformed.status_code == 422
    assert malformed.json()["detail"]["rule"] == "cn.bad_drug_code"


def _medtrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MEDTRACE), *args], capture_output=True, text=True, env=os.environ, timeout=120
    )


def test_the_cn_commands_map_show_and_refuse(chain: Chain) -> None:
    drug, url = _drug_code(), chain.server.url
    token = ["--token", chain.maker.token, "--url", url]

    mapped = _medtrace("cn", "map", drug, "--gtin", GTIN, *token)
    shown = _medtrace("cn", "show", drug, "--url", url)
    taken = _medtrace("cn", "map", drug, "--gtin", OWN_GTIN, *token)
    missing = _medtrace("cn", "show", _drug_code(), "--url", url)

    assert mapped.returncode == 0, mapped.stderr
    assert f"drug code {drug} → GTIN {GTIN}" in mapped.stdout
    assert shown.returncode == 0 and f"drug code {drug} → GTIN {GTIN}" in shown.stdout
    assert taken.returncode == 1 and "Rule: cn.drug_code_taken" in taken.stderr
    assert missing.returncode == 1 and "Rule: cn.unknown_drug_code" in missing.stderr


# --- commissioning and verifying packs keyed by China codes ------------------------------------


def test_a_cn_keyed_pack_is_commissioned_moved_and_verified(chain: Chain) -> None:
    drug = _drug_code()
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    code = _code(drug)

    chain.to_pharmacy(code)  # the unit is (GTIN, the whole code): custody works unchanged
    answer = httpx.get(f"{chain.server.url}/cn/{code}", headers=JSON)
    via_gs1 = httpx.get(f"{chain.server.url}/01/{GTIN}/21/{code}", headers=JSON)

    assert answer.status_code == 200
    body = answer.json()
    assert body["verdict"] == "genuine"
    assert (body["unit"]["gtin"], body["unit"]["serial"]) == (GTIN, code)
    assert body["unit"]["state"] == "received"
    assert body["cn"] == {
        "code": code,
        "drug_code": drug,
        "pack_serial": code[7:16],
        "agency_check": code[16:],
        "gtin": GTIN,
        "check_note": ChinaDrugCode(code).check_note,
    }
    assert "only the issuing agency can verify" in body["cn"]["check_note"]
    assert [e["leaf_index"] for e in body["events"]] == [
        e["leaf_index"] for e in via_gs1.json()["events"]
    ]
    assert len(body["events"]) == 5
    assert answer.headers["vary"] == "Accept"


def test_the_cn_page_in_english_and_chinese(chain: Chain) -> None:
    drug = _drug_code()
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    code = _code(drug)
    chain.commission(code)

    english = httpx.get(f"{chain.server.url}/cn/{code}", headers={**HTML, "Accept-Language": "en"})
    chinese = httpx.get(f"{chain.server.url}/cn/{code}", headers={**HTML, "Accept-Language": "zh"})

    assert english.status_code == chinese.status_code == 200
    for page in (english, chinese):
        assert 'data-verdict="genuine"' in page.text
        assert f'data-code="{code}"' in page.text
        assert code[16:] in page.text and GTIN in page.text
        assert 'id="proof-data"' in page.text  # the same in-browser proof check
        assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "only the issuing agency can verify" in english.text
    assert "只有发码机构能够验证" in chinese.text
    assert "药品标识码" in chinese.text


@pytest.mark.parametrize("mapped", [False, True])
def test_an_unmapped_or_uncommissioned_code_is_unknown_not_an_error(
    chain: Chain, mapped: bool
) -> None:
    drug = _drug_code()
    if mapped:
        chain.maker.api.map_cn_drug_code(drug, GTIN)
    code = _code(drug)

    as_json = httpx.get(f"{chain.server.url}/cn/{code}", headers=JSON)
    as_html = httpx.get(f"{chain.server.url}/cn/{code}", headers=HTML)

    assert as_json.status_code == as_html.status_code == 404
    body = as_json.json()
    assert (body["verdict"], body["unit"], body["events"]) == ("unknown", None, [])
    assert body["cn"]["gtin"] == (GTIN if mapped else None)
    assert ("never commissioned" if mapped else "no manufacturer has registered") in str(
        body["reasons"]
    )
    assert 'data-verdict="unknown"' in as_html.text
    assert f"No pack with China drug traceability code {code}" in as_html.text
    assert "only the issuing agency can verify" in as_html.text


@pytest.mark.parametrize("code", ["123", "8123456789012345678X", "81234567890123456789012"])
def test_a_malformed_cn_code_gets_a_named_422(chain: Chain, code: str) -> None:
    as_json = httpx.get(f"{chain.server.url}/cn/{code}", headers=JSON)
    as_html = httpx.get(f"{chain.server.url}/cn/{code}", headers=HTML)

    assert as_json.status_code == as_html.status_code == 422
    assert as_json.json()["detail"]["rule"] == "cn.bad_code"
    assert "cn.bad_code" in as_html.text


def test_commissioning_a_code_against_its_mapping_is_refused(chain: Chain) -> None:
    drug = _drug_code()
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    station = chain.maker.station
    before = chain.server.snapshot()

    other_product = _refusal(
        lambda: chain.maker.api.capture(
            [station.commission(OWN_GTIN, _code(drug), lot=LOT, expiry=EXPIRY)]
        )
    )
    # GTIN carries China codes, so a 20-digit serial with an unmapped drug code is refused
    unmapped = _refusal(
        lambda: chain.maker.api.capture(
            [
                station.commission(GTIN, _code(drug), lot=LOT, expiry=EXPIRY),
                station.commission(GTIN, _code(_drug_code()), lot=LOT, expiry=EXPIRY),
            ]
        )
    )

    assert (other_product.rule, other_product.index) == ("cn.drug_code_other_product", 0)
    assert (unmapped.rule, unmapped.index) == ("cn.drug_code_not_mapped", 1)
    assert chain.server.snapshot() == before


def test_a_20_digit_gs1_serial_of_a_product_without_china_codes_is_plain_gs1(
    chain: Chain,
) -> None:
    serial = _code(_drug_code())

    chain.maker.api.capture(
        [chain.maker.station.commission(THIRD_GTIN, serial, lot=LOT, expiry=EXPIRY)]
    )

    found = httpx.get(f"{chain.server.url}/01/{THIRD_GTIN}/21/{serial}", headers=JSON)
    assert found.json()["verdict"] == "genuine"
    assert httpx.get(f"{chain.server.url}/cn/{serial}", headers=JSON).status_code == 404


# --- a scan station: printed Code 128 → parsed → /cn JSON → a signed event ----------------------


def test_a_printed_code_128_leads_a_station_to_the_unit_it_signs(
    chain: Chain, tmp_path: Path
) -> None:
    drug = _drug_code()
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    code = _code(drug)
    chain.commission(code)
    with LabelSheet(LABEL_4X6, png_dir=tmp_path, dpi=203) as sheet:
        sheet.add(cn_label(ChinaDrugCode(code)))

    scanned = read_code(sheet.png_pages[0])
    assert scanned == parse_code(code) == parse_code("]C0" + code)
    assert isinstance(scanned, ChinaDrugCode)
    unit = httpx.get(chain.server.url + scanned.verify_path, headers=JSON).json()["unit"]
    assert (unit["gtin"], unit["serial"]) == (GTIN, scanned.unit_serial)
    receipt = chain.maker.api.capture(
        [chain.maker.station.ship(unit["gtin"], unit["serial"], to=chain.hub.gln)]
    )

    assert receipt[0]["duplicate"] is False
    after = httpx.get(chain.server.url + scanned.verify_path, headers=JSON).json()
    assert after["unit"]["state"] == "in_transit"


# --- EPCIS capture goes through the same rule --------------------------------------------------


def _epcis_commission(chain: Chain, gtin: str, code: str) -> dict[str, Any]:
    """Commission one pack by GS1 EPCIS 2.0 capture (the manufacturer's token); the job."""
    commission = {
        "type": "ObjectEvent",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": f"https://id.gs1.org/414/{chain.maker.gln}"},
        "epcList": [f"https://id.gs1.org/01/{gtin}/21/{code}"],
        "ilmd": {"cbvmda:lotNumber": LOT, "cbvmda:itemExpirationDate": EXPIRY.isoformat()},
    }
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-22T10:00:00Z",
        "epcisBody": {"eventList": [commission]},
    }
    auth = {"Authorization": f"Bearer {chain.maker.token}"}
    posted = httpx.post(f"{chain.server.url}/epcis/capture", json=document, headers=auth)
    assert posted.status_code == 202, posted.text
    result: dict[str, Any] = httpx.get(
        chain.server.url + posted.headers["location"], headers=auth
    ).json()
    return result


def test_epcis_commissioning_of_a_china_code_obeys_its_mapping(chain: Chain) -> None:
    drug = _drug_code()
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    code = _code(drug)
    before = chain.server.snapshot()

    refused = _epcis_commission(chain, OWN_GTIN, code)
    assert chain.server.snapshot() == before
    accepted = _epcis_commission(chain, GTIN, code)

    assert refused["success"] is False
    assert [(e["rule"], e["index"]) for e in refused["errors"]] == [
        ("cn.drug_code_other_product", 0)
    ]
    assert accepted["success"] is True
    answer = httpx.get(f"{chain.server.url}/cn/{code}", headers=JSON).json()
    assert answer["verdict"] == "genuine"
    assert [e["authenticated_by"] for e in answer["events"]] == ["participant_token"]
