"""Label sheets and ``medtrace labels``: pages, formats, validation first, real commissioning."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from biip.checksums import gs1_standard_check_digit
from PIL import Image
from sqlalchemy import func, select
from sqlmodel import col

from medtrace.demo import GTIN
from medtrace.errors import InvalidInput
from medtrace.labels import (
    A4,
    LABEL_4X6,
    LabelSheet,
    PageFormat,
    cn_label,
    gs1_128_sscc,
    gs1_datamatrix,
    sscc_label,
    unit_label,
)
from medtrace.models import Event, EventType, Unit, UnitState
from medtrace.protocol.identifiers import ChinaDrugCode, GS1Data
from medtrace.protocol.keys import write_key_file
from medtrace.scanners.decode import read_image
from support.chain import Chain

MEDTRACE = Path(sys.executable).parent / "medtrace"
BASE = "http://127.0.0.1:8000"
EXPIRY = dt.date(2027, 6, 30)
SSCC = "095212340000000013"
OTHER_COMPANY_GTIN = "0952567800011" + str(gs1_standard_check_digit("0952567800011"))


def _unit(serial: str) -> GS1Data:
    return GS1Data(gtin=GTIN, serial=serial, lot="L1", expiry=EXPIRY)


def _pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", path.read_bytes()))


def _keys(png: Path | Image.Image) -> set[str]:
    return {scan.code.key() for scan in read_image(png) if isinstance(scan.code, GS1Data)}


@pytest.mark.parametrize(("page", "per_page"), [(A4, 24), (LABEL_4X6, 1)])
def test_pages_fill_in_order_in_pdf_and_png(
    tmp_path: Path, page: PageFormat, per_page: int
) -> None:
    count = 26
    with LabelSheet(page, pdf=tmp_path / "l.pdf", png_dir=tmp_path / "png", dpi=150) as sheet:
        for i in range(count):
            sheet.add(unit_label(_unit(f"S{i:03d}"), base_url=BASE))
    pages = -(-count // per_page)
    assert sheet.count == count
    assert _pdf_pages(tmp_path / "l.pdf") == pages
    assert [p.name for p in sheet.png_pages] == [f"labels-{n:05d}.png" for n in range(1, pages + 1)]
    with Image.open(sheet.png_pages[0]) as first:
        assert first.info["dpi"] == pytest.approx(
            (150, 150), abs=0.05
        )  # PNG stores pixels per metre
        assert first.size == (round(page.width * 150 / 72), round(page.height * 150 / 72))
    last_page = {_unit(f"S{i:03d}").key() for i in range((pages - 1) * per_page, count)}
    assert _keys(sheet.png_pages[-1]) == last_page
    pdf = pdfium.PdfDocument(tmp_path / "l.pdf")  # the PDF, rendered as a printer would
    assert len(pdf) == pages
    assert _keys(pdf[pages - 1].render(scale=200 / 72).to_pil()) == last_page
    pdf.close()


def test_a4_page_holds_every_symbology_with_text(tmp_path: Path) -> None:
    cn = ChinaDrugCode("81234567890123456789")
    with LabelSheet(A4, png_dir=tmp_path, dpi=300) as sheet:
        sheet.add(unit_label(_unit("ABC"), base_url=BASE))
        sheet.add(sscc_label(SSCC))
        sheet.add(cn_label(cn))
    scans = read_image(sheet.png_pages[0])
    assert {s.symbology for s in scans} == {"]d2", "]Q1", "]C1", "]C0"}
    assert any(s.code == cn for s in scans)
    assert unit_label(_unit("ABC"), base_url=BASE).lines == (
        f"(01){GTIN}",
        "(10)L1",
        "(21)ABC",
        "(17)270630  EXP 2027-06-30",
    )
    assert sscc_label(SSCC).lines == (f"(00) {SSCC}",)
    assert cn_label(cn).lines == ("8123456 789012345 6789",)


def test_the_qr_carries_this_services_digital_link() -> None:
    label = unit_label(_unit("S/1"), base_url="https://trace.example.org/")
    assert label.symbols[1].symbology == "qr"
    assert label.symbols[0].symbology == "datamatrix"


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda: gs1_datamatrix(GS1Data(gtin=GTIN[:-1] + "3", serial="A")), "gs1.bad_check_digit"),
        (lambda: gs1_datamatrix(GS1Data(gtin=GTIN, serial="A#1")), "gs1.bad_character"),
        (lambda: gs1_datamatrix(GS1Data(gtin=GTIN, serial="A" * 21)), "gs1.too_long"),
        (lambda: gs1_datamatrix(GS1Data(gtin=GTIN[1:], serial="A")), "gs1.malformed"),
        (lambda: gs1_128_sscc(SSCC[:-1] + "4"), "gs1.bad_check_digit"),
        (lambda: cn_label(ChinaDrugCode("8123456789012345678")), "cn.bad_code"),
        (lambda: unit_label(GS1Data(gtin=GTIN, lot="L1"), base_url=BASE), "gs1.missing_serial"),
    ],
)
def test_invalid_data_is_refused_before_printing(make: object, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make()  # type: ignore[operator]
    assert caught.value.rule == rule


def test_png_pages_are_written_as_they_fill(tmp_path: Path) -> None:
    """Streaming: a full page is on disk (and out of memory) before the next label comes."""
    with LabelSheet(A4, png_dir=tmp_path, dpi=100) as sheet:
        for i in range(A4.per_page):
            assert sheet.png_pages == []
            sheet.add(sscc_label(_sscc(i)))
        (first,) = sheet.png_pages
        assert first.stat().st_size > 0
        sheet.add(sscc_label(_sscc(A4.per_page)))
        assert sheet.png_pages == [first]
    assert len(sheet.png_pages) == 2


def _sscc(reference: int) -> str:
    payload = f"09521234{reference:09d}"
    return payload + str(gs1_standard_check_digit(payload))


# --- the command --------------------------------------------------------------------------


def _medtrace(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MEDTRACE), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_sscc_and_cn_commands_print_and_refuse_bad_codes(tmp_path: Path) -> None:
    done = _medtrace(
        "labels", "sscc", "--company-prefix", "9521234", "--count", "3", "--first", "7",
        "--png", str(tmp_path / "sscc"), "--page", "4x6", "--dpi", "150",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pages = sorted((tmp_path / "sscc").glob("*.png"))
    assert [_keys(p) for p in pages] == [{f"/00/{_sscc(r)}"} for r in (7, 8, 9)]
    refused = _medtrace(
        "labels", "cn", "81234567890123456789", "123", "--pdf", str(tmp_path / "c.pdf")
    )
    assert refused.returncode == 1
    assert "cn.bad_code" in refused.stderr
    assert not (tmp_path / "c.pdf").exists()
    no_output = _medtrace("labels", "cn", "81234567890123456789")
    assert no_output.returncode == 1
    assert "labels.no_output" in no_output.stderr


def _station(chain: Chain, tmp_path: Path, name: str) -> Path:
    """A second station of the manufacturer, its key in a file as `station keygen` leaves it."""
    from medtrace.protocol.keys import b64, public_key_raw

    key_file = tmp_path / f"{name}.pem"
    chain.maker.api.register_station(name, b64(public_key_raw(write_key_file(key_file))))
    return key_file


def _units_args(chain: Chain, key_file: Path, name: str, gtin: str, out: Path) -> list[str]:
    return [
        "labels", "units", "--gtin", gtin, "--lot", "LBL1", "--expiry", "2027-06-30",
        "--station-id", name, "--key-file", str(key_file), "--gln", chain.maker.gln,
        "--token", chain.maker.token, "--url", chain.server.url,
        "--pdf", str(out / "units.pdf"), "--png", str(out / "png"), "--page", "4x6", "--dpi", "150",
    ]  # fmt: skip


def test_units_commissions_in_batches_then_prints(chain: Chain, tmp_path: Path) -> None:
    key_file = _station(chain, tmp_path, "label-printer")
    args = _units_args(chain, key_file, "label-printer", GTIN, tmp_path)
    done = _medtrace(
        *args, "--count", "11", "--batch-size", "4",
        env={"MEDTRACE_PUBLIC_URL": chain.server.url},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "commissioned 11 units" in done.stdout
    with chain.server.engine.connect() as conn:
        rows = conn.execute(
            select(Unit.serial, Unit.state).where(Unit.gtin == GTIN, Unit.lot == "LBL1")
        ).all()
    serials = {serial for serial, _ in rows}
    assert len(rows) == 11
    assert {state for _, state in rows} == {UnitState.COMMISSIONED}
    pages = sorted((tmp_path / "png").glob("*.png"))
    assert len(pages) == 11 and _pdf_pages(tmp_path / "units.pdf") == 11
    printed = set()
    for page in pages:
        for scan in read_image(page):
            assert isinstance(scan.code, GS1Data)
            assert (scan.code.gtin, scan.code.lot, scan.code.expiry) == (GTIN, "LBL1", EXPIRY)
            printed.add(scan.code.serial)
            if scan.symbology == "]Q1":
                assert scan.text.startswith(chain.server.url + f"/01/{GTIN}/10/LBL1/21/")
    assert printed == serials
    # random, not sequential: no two serials share a 6-character prefix
    assert len({s[:6] for s in serials}) == 11


@pytest.mark.parametrize(
    ("gtin", "rule"),
    [
        (GTIN[:-1] + "3", "gs1.bad_check_digit"),  # refused before anything is sent
        (OTHER_COMPANY_GTIN, "custody.outside_company_prefix"),  # refused by the server
    ],
)
def test_units_refusals_print_nothing_and_change_nothing(
    chain: Chain, tmp_path: Path, gtin: str, rule: str
) -> None:
    key_file = _station(chain, tmp_path, f"printer-{rule.split('.')[0]}")
    before = chain.server.snapshot()
    done = _medtrace(
        *_units_args(chain, key_file, f"printer-{rule.split('.')[0]}", gtin, tmp_path),
        "--count", "5",
    )  # fmt: skip
    assert done.returncode == 1
    assert rule in done.stderr
    assert chain.server.snapshot() == before
    assert not (tmp_path / "units.pdf").exists()
    assert not (tmp_path / "png").exists()


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"--expiry": "2027-02-30"}, "gs1.bad_date"),
        ({"--lot": "LOT#1"}, "gs1.bad_character"),
        ({"--gln": "9521234000007"}, "gs1.bad_check_digit"),
        ({"--key-file": "not-a-key"}, "key.malformed"),
        ({"--pdf": "/nonexistent/folder/l.pdf"}, "labels.no_output"),
    ],
)
def test_units_refuses_bad_input_before_contacting_anyone(
    tmp_path: Path, change: dict[str, str], rule: str
) -> None:
    bad_key = tmp_path / "not-a-key"
    bad_key.write_text("not a key")
    options = {
        "--gtin": GTIN, "--lot": "L1", "--expiry": "2027-06-30", "--count": "3",
        "--station-id": "s1", "--key-file": str(_key_file(tmp_path)),
        "--gln": "9521234000006", "--token": "t", "--url": "http://127.0.0.1:9",
        "--pdf": str(tmp_path / "l.pdf"),
    }  # fmt: skip
    options.update({k: str(tmp_path / v) if k == "--key-file" else v for k, v in change.items()})
    done = _medtrace("labels", "units", *[part for pair in options.items() for part in pair])
    assert done.returncode == 1
    assert f"rule: {rule}" in done.stderr
    assert not (tmp_path / "l.pdf").exists()


def _key_file(folder: Path) -> Path:
    path = folder / "station.pem"
    write_key_file(path)
    return path


# --- packs keyed by China drug traceability codes ----------------------------------------------


def _cn_codes(drug: str, count: int) -> list[str]:
    return [
        f"{drug}{secrets.randbelow(10**9):09d}{secrets.randbelow(10**4):04d}" for _ in range(count)
    ]


def test_units_commissions_and_prints_the_china_codes_of_a_file(
    chain: Chain, tmp_path: Path
) -> None:
    drug = f"7{secrets.randbelow(10**6):06d}"
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    codes = _cn_codes(drug, 5)
    listing = tmp_path / "codes.txt"
    listing.write_text("\n".join(codes[:3]) + "\n\n" + "\n".join(codes[3:]) + "\n")
    key_file = _station(chain, tmp_path, "cn-printer")
    args = _units_args(chain, key_file, "cn-printer", GTIN, tmp_path)

    done = _medtrace(*args, "--cn-codes", str(listing), "--batch-size", "2")

    assert done.returncode == 0, done.stderr
    assert "commissioned 5 units" in done.stdout
    with chain.server.engine.connect() as conn:
        rows = conn.execute(select(Unit.serial).where(Unit.gtin == GTIN, Unit.lot == "LBL1"))
        assert set(codes) <= {serial for (serial,) in rows}
    pages = sorted((tmp_path / "png").glob("*.png"))
    printed = [scan.code for page in pages for scan in read_image(page)]
    assert printed == [ChinaDrugCode(c) for c in codes]


@pytest.mark.parametrize(
    ("lines", "rule"),
    [
        (["{ok}", "12345"], "cn.bad_code"),
        (["{ok}", "{ok}"], "labels.duplicate_code"),
        (["", " "], "labels.no_codes"),
        (["{ok}", "{unmapped}"], "cn.drug_code_not_mapped"),  # refused by the server
    ],
)
def test_units_refuses_a_bad_code_file_and_changes_nothing(
    chain: Chain, tmp_path: Path, lines: list[str], rule: str
) -> None:
    drug = f"7{secrets.randbelow(10**6):06d}"
    chain.maker.api.map_cn_drug_code(drug, GTIN)
    ok, unmapped = _cn_codes(drug, 1)[0], _cn_codes("6999999", 1)[0]
    listing = tmp_path / "codes.txt"
    listing.write_text("\n".join(line.format(ok=ok, unmapped=unmapped) for line in lines))
    key_file = _station(chain, tmp_path, f"cn-{rule.split('.')[1]}")
    before = chain.server.snapshot()

    done = _medtrace(
        *_units_args(chain, key_file, f"cn-{rule.split('.')[1]}", GTIN, tmp_path),
        "--cn-codes", str(listing),
    )  # fmt: skip

    assert done.returncode == 1
    assert rule in done.stderr
    assert chain.server.snapshot() == before
    assert not (tmp_path / "units.pdf").exists()


def test_units_wants_either_a_count_or_a_code_file(tmp_path: Path) -> None:
    listing = tmp_path / "codes.txt"
    listing.write_text("81234567890123456789\n")
    base = [
        "labels", "units", "--gtin", GTIN, "--lot", "L1", "--expiry", "2027-06-30",
        "--station-id", "s1", "--key-file", str(_key_file(tmp_path)), "--gln", "9521234000006",
        "--token", "t", "--url", "http://127.0.0.1:9", "--pdf", str(tmp_path / "l.pdf"),
    ]  # fmt: skip

    both = _medtrace(*base, "--count", "3", "--cn-codes", str(listing))
    neither = _medtrace(*base)

    for done in (both, neither):
        assert done.returncode == 1
        assert "rule: labels.count_or_codes" in done.stderr


# --- resuming a refused run ---------------------------------------------------------------------


def _commissions(chain: Chain, serials: list[str]) -> int:
    with chain.server.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(Event)
            .where(Event.type == EventType.COMMISSION, col(Event.serial).in_(serials))
        ).scalar_one()


def test_a_run_refused_partway_resumes_from_its_plan_without_commissioning_twice(
    chain: Chain, tmp_path: Path
) -> None:
    mapped, later = f"7{secrets.randbelow(10**6):06d}", f"6{secrets.randbelow(10**6):06d}"
    chain.maker.api.map_cn_drug_code(mapped, GTIN)
    codes = _cn_codes(mapped, 4) + _cn_codes(later, 2)  # the last two: drug code not mapped yet
    listing, plan = tmp_path / "codes.txt", tmp_path / "run.json"
    listing.write_text("\n".join(codes))
    key_file = _station(chain, tmp_path, "cn-resume")
    args = [
        *_units_args(chain, key_file, "cn-resume", GTIN, tmp_path),
        "--cn-codes", str(listing), "--batch-size", "2", "--resume", str(plan),
    ]  # fmt: skip

    refused = _medtrace(*args)
    assert refused.returncode == 1
    assert "cn.drug_code_not_mapped" in refused.stderr
    assert "4 of 6 serials were commissioned before the refusal" in refused.stdout
    assert f"--resume {plan}" in refused.stdout
    assert _commissions(chain, codes) == 4 and not (tmp_path / "units.pdf").exists()

    chain.maker.api.map_cn_drug_code(later, GTIN)
    leaves = chain.server.snapshot()[0]
    resumed = _medtrace(*args)

    assert resumed.returncode == 0, resumed.stderr
    assert (
        "commissioned 6 units" in resumed.stdout and "4 of them by an earlier run" in resumed.stdout
    )
    assert chain.server.snapshot()[0] == leaves + 2
    assert _commissions(chain, codes) == 6
    printed = [s.code for p in sorted((tmp_path / "png").glob("*.png")) for s in read_image(p)]
    assert printed == [ChinaDrugCode(c) for c in codes]


def test_a_finished_plan_reprints_the_same_serials_and_refuses_other_options(
    chain: Chain, tmp_path: Path
) -> None:
    key_file = _station(chain, tmp_path, "resume-gs1")
    plan = tmp_path / "run.json"
    args = [*_units_args(chain, key_file, "resume-gs1", GTIN, tmp_path), "--resume", str(plan)]
    first = _medtrace(*args, "--count", "3")
    assert first.returncode == 0, first.stderr
    serials = json.loads(plan.read_text())["serials"]
    before = chain.server.snapshot()

    again = _medtrace(*args, "--count", "3")
    other_lot = _medtrace(*[a if a != "LBL1" else "LBL2" for a in args], "--count", "3")
    other_count = _medtrace(*args, "--count", "4")

    assert again.returncode == 0, again.stderr
    assert "3 of them by an earlier run" in again.stdout
    assert chain.server.snapshot() == before
    assert _commissions(chain, serials) == 3
    assert {s.code.serial for s in read_image(sorted((tmp_path / "png").glob("*.png"))[0])} <= set(
        serials
    )
    for done, what in ((other_lot, "lot"), (other_count, "count")):
        assert done.returncode == 1
        assert "rule: labels.resume_mismatch" in done.stderr and what in done.stderr
    assert chain.server.snapshot() == before
