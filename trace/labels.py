"""Label sheets: GS1 DataMatrix, QR (GS1 Digital Link), GS1-128 and Code 128, with their text.

Symbols are made by the libraries the standards' users trust: GS1 DataMatrix by ``zxing-cpp``
(``gs1=True``: FNC1 in first position, ISO/IEC 16022 + GS1 General Specifications §5.6), QR by
``qrcode`` (ISO/IEC 18004) carrying the GS1 Digital Link URI of this service, GS1-128 (FNC1
first, GenSpecs §5.4) by ``python-barcode``, and plain Code 128 (China's drug traceability
code) by ``zxing-cpp`` again. None of the writers validates GS1 data, so every symbol's data
is parsed back by :mod:`medtrace.protocol.identifiers` before it is drawn.

Each symbol is kept as a one-pixel-per-module image (quiet zone included), scaled by whole
modules on a page: crisp in a PDF and in a PNG at any resolution. Pages are finished one at a
time (PDF by a ``reportlab`` canvas, PNG by Pillow, one file per page), so a sheet of 10 000
labels holds one page of images: the PDF keeps only each finished page's compressed content
until it is saved (about 1 KB per label).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Protocol

import barcode  # type: ignore[import-untyped]
import qrcode
import zxingcpp
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.units import inch, mm
from reportlab.pdfgen.canvas import Canvas

from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import (
    ChinaDrugCode,
    GS1Data,
    check_x20,
    parse_cn_drug_code,
    parse_element_string,
)

# --- symbols ----------------------------------------------------------------------------------


class Symbology(StrEnum):
    """The symbols medtrace prints."""

    DATAMATRIX = "datamatrix"
    QR = "qr"
    GS1_128 = "gs1-128"
    CODE128 = "code128"


@dataclass(frozen=True)
class Symbol:
    """A symbol as modules: a 1-bit image, one pixel per module, quiet zone included."""

    symbology: Symbology
    modules: Image.Image

    @property
    def linear(self) -> bool:
        """Whether this is a 1D symbol (its one row of modules is stretched to a bar height)."""
        return self.modules.height == 1


def _validated(data: GS1Data) -> GS1Data:
    """Parse the data's element string back: zxing-cpp and python-barcode print invalid GS1
    data (a wrong check digit, day 32) happily, so nothing unparseable reaches a label."""
    for field, value in (("lot", data.lot), ("serial", data.serial)):
        if value is not None:
            check_x20(value, field=field)
    plain = replace(data, symbology=None)
    if parse_element_string(data.element_string()) != plain:
        raise InvalidInput(f"label data {data} is not a GS1 element string", rule="gs1.malformed")
    return plain


def _from_rows(rows: Iterable[Iterable[bool]], width: int, height: int) -> Image.Image:
    image = Image.new("1", (width, height), 1)
    image.putdata([0 if dark else 1 for row in rows for dark in row])
    return image


def gs1_datamatrix(data: GS1Data) -> Symbol:
    """A GS1 DataMatrix of the data's element string (FNC1 first), validated first."""
    valid = _validated(data)
    # Square symbols only: GS1 healthcare labels use them, and zxing-cpp would otherwise
    # pick a long, thin rectangle for some data.
    code = zxingcpp.create_barcode(
        valid.bracketed(), zxingcpp.BarcodeFormat.DataMatrix, gs1=True, force_square=True
    )
    image = Image.fromarray(code.to_image(scale=1, add_quiet_zones=True)).convert("1")
    return Symbol(Symbology.DATAMATRIX, image)


def qr_symbol(text: str) -> Symbol:
    """A QR code of ``text`` (a GS1 Digital Link URI), error correction M, 4-module quiet zone."""
    qr = qrcode.QRCode(error_correction=qrcode.ERROR_CORRECT_M, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    return Symbol(Symbology.QR, _from_rows(matrix, len(matrix[0]), len(matrix)))


def _linear(bars: str, symbology: Symbology) -> Symbol:
    """A 1D symbol from python-barcode's module string, with a 10-module quiet zone each side."""
    padded = "0" * 10 + bars + "0" * 10
    return Symbol(symbology, _from_rows([[c == "1" for c in padded]], len(padded), 1))


def gs1_128_sscc(sscc: str) -> Symbol:
    """A GS1-128 symbol of an SSCC (AI 00), for cases and pallets, validated first."""
    valid = _validated(GS1Data(sscc=sscc))
    assert valid.sscc is not None
    return _linear(barcode.Gs1_128("00" + valid.sscc).build()[0], Symbology.GS1_128)


def code128_cn(code: ChinaDrugCode) -> Symbol:
    """A plain Code 128 symbol (no FNC1) of China's 20-digit drug traceability code.

    Written by zxing-cpp: python-barcode 0.16.1 drops a leading ``99`` digit pair (it takes
    code set C's value 99 for a "switch to C" and folds it into the start character).
    """
    valid = parse_cn_drug_code(code.code)
    drawn = zxingcpp.create_barcode(valid.code, zxingcpp.BarcodeFormat.Code128)
    bars = Image.fromarray(drawn.to_image(scale=1, add_quiet_zones=True))
    return Symbol(Symbology.CODE128, bars.crop((0, 0, bars.width, 1)).convert("1"))


# --- labels -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """What one label shows: its symbols side by side, and lines of text under them."""

    symbols: tuple[Symbol, ...]
    lines: tuple[str, ...]


def _date(value: dt.date | None) -> str:
    return f"{value:%Y-%m-%d}" if value else ""


def unit_label(data: GS1Data, *, base_url: str) -> Label:
    """A pack's label: GS1 DataMatrix and a QR of its Digital Link URI on ``base_url``.

    The text is the HRI of the element string, then the expiry in full (GenSpecs §4.15).
    """
    lines = [f"(01){data.gtin}", f"(21){data.serial}"]
    if data.lot:
        lines.insert(1, f"(10){data.lot}")
    if data.expiry:
        lines.append(f"(17){data.expiry:%y%m%d}  EXP {_date(data.expiry)}")
    return Label(
        (gs1_datamatrix(data), qr_symbol(data.digital_link_uri(base_url))),
        tuple(lines),
    )


def sscc_label(sscc: str) -> Label:
    """A case or pallet label: GS1-128 of the SSCC, with its HRI."""
    return Label((gs1_128_sscc(sscc),), (f"(00) {sscc}",))


def cn_label(code: ChinaDrugCode) -> Label:
    """A China drug traceability code label: Code 128 and the 20 digits grouped as issued."""
    text = f"{code.drug_id} {code.serial} {code.agency_check}"
    return Label((code128_cn(code),), (text,))


# --- pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageFormat:
    """A page of labels in points (1/72 inch): its size and its grid of label cells."""

    name: str
    width: float
    height: float
    columns: int
    rows: int
    margin_x: float
    margin_y: float

    @property
    def per_page(self) -> int:
        """Labels on one page."""
        return self.columns * self.rows

    @property
    def cell(self) -> tuple[float, float]:
        """The width and height of one label cell."""
        return (
            (self.width - 2 * self.margin_x) / self.columns,
            (self.height - 2 * self.margin_y) / self.rows,
        )

    def origin(self, slot: int) -> tuple[float, float]:
        """The top-left corner of cell ``slot`` (row by row), y measured from the top."""
        w, h = self.cell
        return self.margin_x + (slot % self.columns) * w, self.margin_y + (slot // self.columns) * h


#: A4 sheet of 3 x 8 labels of 70 x 37 mm (the common office label sheet).
A4 = PageFormat("a4", 210 * mm, 297 * mm, 3, 8, 0, 4.5 * mm)
#: One label per 4 x 6 inch page, as thermal label printers take them.
LABEL_4X6 = PageFormat("4x6", 4 * inch, 6 * inch, 1, 1, 0.25 * inch, 0.25 * inch)
PAGE_FORMATS = {f.name: f for f in (A4, LABEL_4X6)}


class _Painter(Protocol):
    def symbol(self, modules: Image.Image, x: float, y: float, w: float, h: float) -> None: ...
    def text(self, line: str, x: float, y: float, size: float) -> None: ...
    def end_page(self) -> None: ...
    def close(self) -> None: ...


class _PdfPainter:
    """Pages into one PDF through a reportlab canvas, each page closed on ``showPage``.

    Symbols are inline images (ISO 32000-1 §8.9.7, meant for images under 4 KB, as a
    one-pixel-per-module symbol is): they live in the page's compressed content stream, where
    an image XObject per symbol would keep thousands of objects in memory until the end.
    """

    def __init__(self, path: Path, page: PageFormat) -> None:
        self._page = page
        self._canvas = Canvas(str(path), pagesize=(page.width, page.height))
        self._canvas.setTitle("medtrace labels")

    def symbol(self, modules: Image.Image, x: float, y: float, w: float, h: float) -> None:
        self._canvas.drawInlineImage(modules.convert("L"), x, self._page.height - y - h, w, h)

    def text(self, line: str, x: float, y: float, size: float) -> None:
        self._canvas.setFont("Helvetica", size)
        self._canvas.drawString(x, self._page.height - y - size, line)

    def end_page(self) -> None:
        self._canvas.showPage()

    def close(self) -> None:
        self._canvas.save()


class _PngPainter:
    """One grayscale PNG per page at ``dpi``, written when the page ends."""

    def __init__(self, folder: Path, page: PageFormat, dpi: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder, self._page, self._scale = folder, page, dpi / 72
        self._dpi = dpi
        self._number = 0
        self._image: Image.Image | None = None
        self.paths: list[Path] = []

    def _canvas(self) -> Image.Image:
        if self._image is None:
            size = (round(self._page.width * self._scale), round(self._page.height * self._scale))
            self._image = Image.new("L", size, 255)
        return self._image

    def symbol(self, modules: Image.Image, x: float, y: float, w: float, h: float) -> None:
        # Whole pixels per module: uneven bars and cells are what readers fail on.
        if modules.height == 1:  # bars: whole pixels across, any height
            pixels = max(1, int(w * self._scale / modules.width))
            size = (pixels * modules.width, round(h * self._scale))
        else:
            pixels = max(1, int(min(w / modules.width, h / modules.height) * self._scale))
            size = (pixels * modules.width, pixels * modules.height)
        scaled = modules.convert("L").resize(size, Image.Resampling.NEAREST)
        self._canvas().paste(scaled, (round(x * self._scale), round(y * self._scale)))

    def text(self, line: str, x: float, y: float, size: float) -> None:
        font = ImageFont.load_default(size=size * self._scale)
        draw = ImageDraw.Draw(self._canvas())
        draw.text((x * self._scale, y * self._scale), line, fill=0, font=font)

    def end_page(self) -> None:
        self._number += 1
        path = self._folder / f"labels-{self._number:05d}.png"
        self._canvas().save(path, dpi=(self._dpi, self._dpi))
        self.paths.append(path)
        self._image = None

    def close(self) -> None:
        """Nothing is pending: every page was written when it ended."""


_TEXT_RATIO = 0.075  # text size relative to the cell's height
_GAP = 0.04  # gap between symbols, relative to the cell's width


class LabelSheet:
    """Lays labels out page by page into a PDF, PNG pages, or both; use as a context manager.

    ``pdf`` is the PDF file, ``png_dir`` the folder of PNG pages (``labels-00001.png``, ...),
    ``dpi`` their resolution (300 for office printers, 203 for most thermal printers).
    """

    def __init__(
        self,
        page: PageFormat,
        *,
        pdf: Path | None = None,
        png_dir: Path | None = None,
        dpi: int = 300,
    ) -> None:
        if pdf is None and png_dir is None:
            raise ValueError("a label sheet needs a PDF path, a PNG folder or both")
        self.page = page
        self._pdf = _PdfPainter(pdf, page) if pdf else None
        self._png = _PngPainter(png_dir, page, dpi) if png_dir else None
        self._painters: list[_Painter] = [p for p in (self._pdf, self._png) if p is not None]
        self._slot = 0
        self.count = 0

    @property
    def png_pages(self) -> list[Path]:
        """The PNG pages written so far."""
        return list(self._png.paths) if self._png else []

    def __enter__(self) -> LabelSheet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add(self, label: Label) -> None:
        """Draw one label in the next cell; a full page is written out at once."""
        x0, y0 = self.page.origin(self._slot)
        cell_w, cell_h = self.page.cell
        pad = min(cell_w, cell_h) * 0.06
        size = cell_h * _TEXT_RATIO
        text_h = size * 1.2 * len(label.lines)
        avail_w, avail_h = cell_w - 2 * pad, cell_h - 2 * pad - text_h
        gap = cell_w * _GAP
        # Matrix symbols are square, as tall as the room left; linear ones share the width.
        matrices = [s for s in label.symbols if not s.linear]
        side = min(avail_h, (avail_w - gap * (len(label.symbols) - 1)) / max(len(matrices), 1))
        x = x0 + pad
        for symbol in label.symbols:
            modules = symbol.modules
            if symbol.linear:
                width = avail_w - (side + gap) * len(matrices)
                module = max(int(width / modules.width * 100) / 100, 0.01)
                w, h = modules.width * module, avail_h
            else:
                w = h = side
            for painter in self._painters:
                painter.symbol(modules, x, y0 + pad, w, h)
            x += w + gap
        y = y0 + pad + avail_h + size * 0.2
        for line in label.lines:
            for painter in self._painters:
                painter.text(line, x0 + pad, y, size)
            y += size * 1.2
        self.count += 1
        self._slot += 1
        if self._slot == self.page.per_page:
            self._end_page()

    def _end_page(self) -> None:
        for painter in self._painters:
            painter.end_page()
        self._slot = 0

    def close(self) -> None:
        """Write the last, partly filled page and finish the files."""
        if self._slot:
            self._end_page()
        for painter in self._painters:
            painter.close()
        self._painters = []
