"""Lot records with real PDF inspection reports, through a real server."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from independent_checker import check_url
from medtrace.demo import GTIN, with_check_digit
from medtrace.models.lots import LotRecord
from medtrace.protocol.identifiers import digital_link_path
from support.chain import EXPIRY, Chain, make_chain, new_serial
from support.live import LiveServer, start_server
from support.lots import pdf, record
from support.lots import post as post_lot

LIMIT = 50_000


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with a small document size limit, to test it without huge files."""
    live = start_server(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("lots"),
        env={"MEDTRACE_MAX_DOCUMENT_BYTES": str(LIMIT)},
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chain(server: LiveServer) -> Iterator[Chain]:
    with make_chain(server) as built:
        yield built


def post(
    chain: Chain, token: str, envelope: dict[str, Any], files: dict[str, bytes]
) -> httpx.Response:
    return post_lot(chain.server.url, token, envelope, files)


def state(chain: Chain) -> tuple[int, int, int]:
    """Leaves, lot records and stored files: unchanged by any refusal."""
    leaves = chain.server.snapshot()[0]
    with chain.server.engine.connect() as conn:
        records = conn.execute(select(func.count()).select_from(LotRecord)).scalar_one()
    stored = (
        sum(1 for p in (chain.server.data_dir / "documents").rglob("*") if p.is_file())
        if (chain.server.data_dir / "documents").exists()
        else 0
    )
    return leaves, records, stored


def test_a_lot_record_puts_its_documents_hashes_on_the_ledger(chain: Chain) -> None:
    files = {
        "inspection-L7.pdf": pdf("Inspection report, lot L7: conforms"),
        "coa-L7.pdf": pdf("Certificate of analysis, lot L7"),
    }
    created = post(chain, chain.maker.token, record(chain.maker.station, "L7", 1, files), files)
    assert created.status_code == 201, created.text
    version = created.json()

    leaf = httpx.get(
        f"{chain.server.url}/api/v1/ledger/leaves",
        params={"start": version["leaf_index"], "end": version["leaf_index"] + 1},
    )
    signed = json.loads(base64.b64decode(leaf.json()[0]["data"]))["event"]
    on_ledger = {d["filename"]: d["sha256"] for d in signed["documents"]}
    for document in version["documents"]:
        download = httpx.get(document["url"])
        assert download.headers["content-type"] == "application/pdf"
        assert "immutable" in download.headers["cache-control"]
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-disposition"] == (
            f'attachment; filename="{on_ledger[document["filename"]]}.pdf"'
        )
        assert hashlib.sha256(download.content).hexdigest() == on_ledger[document["filename"]]

    lot = httpx.get(f"{chain.server.url}/api/v1/lots/{GTIN}/L7").json()
    assert lot["product"]["name_zh"] == "阿莫西林胶囊"
    assert [v["version"] for v in lot["versions"]] == [1]


def test_an_amendment_adds_a_version_and_keeps_the_history(chain: Chain) -> None:
    first = {"inspection-L8.pdf": pdf("Inspection report, lot L8")}
    assert (
        post(
            chain, chain.maker.token, record(chain.maker.station, "L8", 1, first), first
        ).status_code
        == 201
    )
    amended = {"amendment-L8.pdf": pdf("Amendment: retest of lot L8 conforms")}
    envelope = record(chain.maker.station, "L8", 2, amended, event_time="2026-11-23T09:00:00Z")
    assert post(chain, chain.maker.token, envelope, amended).status_code == 201

    history = httpx.get(f"{chain.server.url}/api/v1/lots/{GTIN}/L8").json()["versions"]
    assert [(v["version"], [d["filename"] for d in v["documents"]]) for v in history] == [
        (1, ["inspection-L8.pdf"]),
        (2, ["amendment-L8.pdf"]),
    ]
    again = post(chain, chain.maker.token, envelope, amended)
    assert again.status_code == 201 and again.json()["event_id"] == history[1]["event_id"]


def test_a_swapped_file_no_longer_matches_the_ledger(chain: Chain) -> None:
    files = {"inspection-L9.pdf": pdf("Inspection report, lot L9: conforms")}
    version = post(
        chain, chain.maker.token, record(chain.maker.station, "L9", 1, files), files
    ).json()
    sha = version["documents"][0]["sha256"]
    stored = chain.server.data_dir / "documents" / "sha256" / sha[:2] / sha[2:4] / sha
    stored.write_bytes(pdf("Inspection report, lot L9: FORGED"))

    download = httpx.get(version["documents"][0]["url"])

    assert hashlib.sha256(download.content).hexdigest() != sha, "the ledger hash exposes it"


def test_the_verify_json_carries_the_lot_record_for_an_independent_check(chain: Chain) -> None:
    files = {"inspection-L10.pdf": pdf("Inspection report, lot L10: conforms")}
    version = post(chain, chain.maker.token, record(chain.maker.station, "L10", 1, files), files)
    assert version.status_code == 201, version.text
    serial = new_serial()
    maker = chain.maker
    maker.api.capture([maker.station.commission(GTIN, serial, lot="L10", expiry=EXPIRY)])
    chain.server.wait_for_checkpoint(chain.server.leaves())
    url = chain.server.url + digital_link_path(GTIN, serial, lot="L10")

    answer = httpx.get(url, headers={"Accept": "application/json"}).json()
    (shown,) = answer["lot_records"]
    assert (shown["version"], shown["leaf_index"]) == (1, version.json()["leaf_index"])
    assert shown["documents"] == version.json()["documents"]
    assert shown["participant"]["gln"] == chain.maker.gln
    honest = check_url(url)
    assert [(c.kind, c.status) for c in honest] == [("event", "ok"), ("lot_record", "ok")]
    assert honest[1].reason == "1 documents match: inspection-L10.pdf"

    sha = shown["documents"][0]["sha256"]
    stored = chain.server.data_dir / "documents" / "sha256" / sha[:2] / sha[2:4] / sha
    stored.write_bytes(pdf("Inspection report, lot L10: FORGED"))
    swapped = check_url(url)[1]
    assert swapped.status == "failed"
    assert swapped.reason.startswith("document 'inspection-L10.pdf' downloaded has SHA-256")


def _other_gtin() -> str:
    return "0" + with_check_digit("952999900011")


@pytest.mark.parametrize(
    ("case", "status", "rule"),
    [
        ("not_a_pdf", 422, "document.not_pdf"),
        ("html_behind_pdf_magic", 422, "document.not_pdf"),
        ("cut_short_pdf", 422, "document.not_pdf"),
        ("too_large", 422, "document.too_large"),
        ("files_differ", 422, "document.mismatch"),
        ("outside_prefix", 409, "lot.outside_company_prefix"),
        ("twice", 409, "lot.already_registered"),
        ("skipped_version", 409, "lot.bad_version"),
        ("expiry_first", 422, "lot.expiry_before_production"),
        ("tampered", 403, "signature.invalid"),
        ("distributor", 409, "lot.not_a_manufacturer"),
        ("malformed", 422, "lot.invalid"),
    ],
)
def test_bad_lot_records_are_refused_by_name_and_store_nothing(
    chain: Chain, case: str, status: int, rule: str
) -> None:
    station, token = chain.maker.station, chain.maker.token
    good = {"report.pdf": pdf(f"report for {case}")}
    files, envelope = good, record(station, f"B{case[:6]}", 1, good)
    if case == "not_a_pdf":
        files = {"report.pdf": b"GIF89a not a pdf"}
        envelope = record(station, "BADPDF", 1, files)
    elif case == "html_behind_pdf_magic":  # passed a check of the first five bytes
        files = {"report.pdf": b"%PDF-1.7\n<html><script>alert(document.cookie)</script>"}
        envelope = record(station, "HTMLPDF", 1, files)
    elif case == "cut_short_pdf":
        files = {"report.pdf": pdf("a report cut short")[:400]}
        envelope = record(station, "CUTPDF", 1, files)
    elif case == "too_large":
        files = {"report.pdf": pdf("x") + b"%" * LIMIT}
        envelope = record(station, "BIG", 1, files)
    elif case == "files_differ":
        files = {"report.pdf": pdf("another file")}
    elif case == "outside_prefix":
        envelope = record(station, "FOREIGN", 1, good, gtin=_other_gtin())
    elif case == "twice":
        assert post(chain, token, envelope, files).status_code == 201
        envelope = record(station, f"B{case[:6]}", 1, good, quantity=5)
    elif case == "skipped_version":
        envelope = record(station, "NEVER", 3, good)
    elif case == "expiry_first":
        envelope = record(station, "DATES", 1, good, expiry="2026-09-30")
    elif case == "tampered":
        envelope["event"]["quantity"] = 1
    elif case == "distributor":
        station, token = chain.hub.station, chain.hub.token
        envelope = record(station, "HUB", 1, good)
    elif case == "malformed":
        envelope = record(station, "BAD", 1, good, quantity=-5)
    before = state(chain)

    response = post(chain, token, envelope, files)

    assert (response.status_code, response.json()["detail"]["rule"]) == (status, rule)
    assert state(chain) == before


def test_an_unknown_lot_and_document_are_404(chain: Chain) -> None:
    lot = httpx.get(f"{chain.server.url}/api/v1/lots/{GTIN}/NOPE")
    doc = httpx.get(f"{chain.server.url}/api/v1/documents/{'0' * 64}")
    assert (lot.status_code, lot.json()["detail"]["rule"]) == (404, "lot.unknown")
    assert (doc.status_code, doc.json()["detail"]["rule"]) == (404, "document.unknown")
