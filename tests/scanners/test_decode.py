"""Reading codes from wedge text, Digital Link URIs and real images (PNG, JPEG, photos)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from medtrace.errors import InvalidInput
from medtrace.labels import (
    A4,
    LABEL_4X6,
    Label,
    LabelSheet,
    PageFormat,
    cn_label,
    sscc_label,
    unit_label,
)
from medtrace.protocol.identifiers import ChinaDrugCode, GS1Data
from medtrace.scanners import decode
from medtrace.scanners.decode import read_code, read_image
from support.photo import photograph

BASE = "http://127.0.0.1:8000"
GTIN = "09521234000112"
SSCC = "095212340000000013"
UNIT = GS1Data(gtin=GTIN, serial="K7Q2M9XW4H3P", lot="L2611", expiry=dt.date(2027, 6, 30))


def _page(tmp_path: Path, *labels: Label, page: PageFormat = LABEL_4X6, dpi: int = 203) -> Path:
    folder = tmp_path / f"png{len(list(tmp_path.iterdir()))}"
    with LabelSheet(page, png_dir=folder, dpi=dpi) as sheet:
        for label in labels:
            sheet.add(label)
    return sheet.png_pages[0]


def test_wedge_text_and_digital_link_give_the_same_key() -> None:
    wedge = read_code(f"]d201{GTIN}17270630" + "10L2611\x1d21K7Q2M9XW4H3P\r\n")
    link = read_code(UNIT.digital_link_uri("https://id.example.org"))
    assert wedge == GS1Data(**{**UNIT.__dict__, "symbology": "]d2"})
    assert link == UNIT
    assert isinstance(wedge, GS1Data) and isinstance(link, GS1Data)
    assert wedge.key() == link.key() == f"/01/{GTIN}/21/K7Q2M9XW4H3P"


def test_a_label_image_gives_its_key_lot_and_expiry(tmp_path: Path) -> None:
    png = _page(tmp_path, unit_label(UNIT, base_url=BASE))
    code = read_code(png)  # a path
    assert isinstance(code, GS1Data)
    assert (code.gtin, code.serial, code.lot, code.expiry) == (
        GTIN,
        UNIT.serial,
        UNIT.lot,
        UNIT.expiry,
    )
    with Image.open(png) as image:  # a Pillow image; its DataMatrix and QR agree
        assert replace(read_code(image), symbology=None) == UNIT  # type: ignore[type-var]


def test_a_jpeg_photo_of_a_label_reads(tmp_path: Path) -> None:
    with Image.open(_page(tmp_path, sscc_label(SSCC))) as page:
        shot = photograph(page, angle=7, scale=0.8, blur=0.8, noise=0.1)
    jpeg = tmp_path / "photo.jpg"
    shot.save(jpeg, quality=70)
    assert read_code(jpeg) == GS1Data(sscc=SSCC, symbology="]C1")


def test_several_codes_in_one_picture(tmp_path: Path) -> None:
    other = GS1Data(gtin=GTIN, serial="ZZ9", lot="L2611", expiry=dt.date(2027, 6, 30))
    cn = ChinaDrugCode("81234567890123456789")
    labels = [unit_label(UNIT, base_url=BASE), unit_label(other, base_url=BASE), cn_label(cn)]
    with Image.open(_page(tmp_path, *labels, page=A4, dpi=300)) as page:
        shot = photograph(page, angle=-4, scale=0.9, blur=0.5, noise=0.05)
    scans = read_image(shot)
    keys = {s.code.key() if isinstance(s.code, GS1Data) else s.code for s in scans}
    assert keys == {UNIT.key(), other.key(), cn}
    assert len(scans) == 5  # two DataMatrix, two QR, one Code 128
    with pytest.raises(InvalidInput, match="3 different codes") as caught:
        read_code(shot)
    assert caught.value.rule == "scan.several_codes"


def test_no_code_and_not_an_image_are_named(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (400, 300), 255).save(blank)
    with pytest.raises(InvalidInput) as caught:
        read_code(blank)
    assert caught.value.rule == "scan.no_code"
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InvalidInput) as bad:
        read_code(text)
    assert bad.value.rule == "scan.bad_image"
    with pytest.raises(InvalidInput) as missing:
        read_code(tmp_path / "missing.png")
    assert missing.value.rule == "scan.bad_image"


def test_a_bad_code_in_an_image_is_refused_with_its_rule(tmp_path: Path) -> None:
    # A GS1 DataMatrix written without validation, with a wrong GTIN check digit.
    bad = zxingcpp.create_barcode(
        f"(01){GTIN[:-1]}3(21)X", zxingcpp.BarcodeFormat.DataMatrix, gs1=True
    )
    image = Image.fromarray(bad.to_image(scale=8, add_quiet_zones=True))
    with pytest.raises(InvalidInput) as caught:
        read_code(image)
    assert caught.value.rule == "gs1.bad_check_digit"


def test_pyzbar_reads_what_zxing_misses_and_zxing_names_its_symbology(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second reader: when zxing-cpp finds nothing in the whole picture, pyzbar's finds
    are kept, and zxing-cpp reads each found region again for the symbology identifier."""
    with Image.open(_page(tmp_path, unit_label(UNIT, base_url=BASE))) as page:
        label = page.copy()
    with Image.open(_page(tmp_path, sscc_label(SSCC))) as page:
        sscc = page.copy()
    real = zxingcpp.read_barcodes
    sizes = {label.size, sscc.size}

    def blind_to_whole_pages(image: Image.Image, **kwargs: object) -> list[zxingcpp.Barcode]:
        return [] if image.size in sizes else real(image, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(decode.zxingcpp, "read_barcodes", blind_to_whole_pages)
    scans = read_image(label)
    assert [(s.reader, s.symbology, s.code) for s in scans] == [("pyzbar", "]Q1", UNIT)]
    (found,) = read_image(sscc)
    assert (found.reader, found.symbology) == ("pyzbar", "]C1")
    assert found.code == GS1Data(sscc=SSCC, symbology="]C1")
