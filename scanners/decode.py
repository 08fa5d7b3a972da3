"""Reading codes, whatever the source: keyboard-wedge text, a Digital Link URI, an image.

Images (PNG, JPEG; photos too: rotated, a little blurred, several codes in one picture) are
read by two libraries: ``zxing-cpp`` reads every symbology medtrace prints, DataMatrix
included, and reports the ISO/IEC 15424 symbology identifier (``]d2``, ``]C1``, ``]Q1``) that
tells GS1 symbols from plain ones; ``pyzbar`` (ZBar, needs Debian's ``libzbar0``) is the second
reader for QR and 1D symbols (it cannot read DataMatrix and reports no symbology identifier,
so a symbol only it found is read again by zxing-cpp in its own region to learn that).
Every text then goes through :func:`medtrace.protocol.identifiers.parse_code`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError
from pyzbar import pyzbar  # type: ignore[import-untyped]

from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import Code, GS1Data, parse_code

_ZBAR_SYMBOLS = [
    pyzbar.ZBarSymbol.QRCODE,
    pyzbar.ZBarSymbol.CODE128,
    pyzbar.ZBarSymbol.EAN13,
]  # not DataBar: ZBar 0.23's DataBar decoder prints assertion failures; zxing-cpp reads it
_CROP_MARGIN = 0.25  # of the symbol's size, around a region found by pyzbar


@dataclass(frozen=True)
class Scan:
    """One code read from a source: what it says, its raw text and who read it."""

    code: Code
    text: str
    symbology: str | None
    reader: str


def _zxing(image: Image.Image) -> list[tuple[str, str | None]]:
    results = zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain)
    return [(r.text, r.symbology_identifier or None) for r in results if r.valid]


def _zbar(image: Image.Image) -> list[tuple[str, pyzbar.Rect]]:
    found = []
    for result in pyzbar.decode(image, symbols=_ZBAR_SYMBOLS):
        try:
            found.append((result.data.decode("utf-8"), result.rect))
        except UnicodeDecodeError:
            continue  # not a code medtrace prints: nothing in it could parse
    return found


def _symbology_of(image: Image.Image, rect: pyzbar.Rect, text: str) -> str | None:
    """Read the region pyzbar found again with zxing-cpp, for the symbology identifier."""
    dx, dy = int(rect.width * _CROP_MARGIN) + 10, int(rect.height * _CROP_MARGIN) + 10
    box = (
        max(rect.left - dx, 0),
        max(rect.top - dy, 0),
        min(rect.left + rect.width + dx, image.width),
        min(rect.top + rect.height + dy, image.height),
    )
    for again, symbology in _zxing(image.crop(box)):
        if again == text:
            return symbology
    return None


def _texts(image: Image.Image) -> list[tuple[str, str | None, str]]:
    """Every distinct text in the image with its symbology identifier and reader."""
    seen: dict[str, tuple[str, str | None, str]] = {}
    for text, symbology in _zxing(image):
        seen.setdefault(text, (text, symbology, "zxing-cpp"))
    for text, rect in _zbar(image):
        if text not in seen:
            seen[text] = (text, _symbology_of(image, rect, text), "pyzbar")
    return list(seen.values())


def _open(source: Path | Image.Image) -> Image.Image:
    if isinstance(source, Image.Image):
        return source.convert("L")
    try:
        with Image.open(source) as opened:
            return opened.convert("L")
    except (OSError, UnidentifiedImageError) as exc:
        raise InvalidInput(
            f"cannot read an image from {source}: {exc}", rule="scan.bad_image"
        ) from exc


def read_image(source: Path | Image.Image) -> list[Scan]:
    """Every code in an image, parsed (several codes per picture are normal on a label).

    Rotation needs no care: both readers try every orientation. Raises ``InvalidInput``:
    ``scan.bad_image`` for an unreadable file, or the parse rule of a code that is not a
    valid identifier.
    """
    return [
        Scan(parse_code(f"{symbology or ''}{text}"), text, symbology, reader)
        for text, symbology, reader in _texts(_open(source))
    ]


def read_code(source: str | Path | Image.Image) -> Code:
    """The one code a source carries: wedge text, a Digital Link URI, or an image file/object.

    A ``str`` is scanned text (a Digital Link URI or an element string, with or without a
    symbology identifier); a ``Path`` or a Pillow image is read with :func:`read_image`.
    For a GS1 code the result is a ``GS1Data`` with its key (GTIN + serial, or SSCC), lot and
    expiry. An image's DataMatrix and QR naming the same unit count as one code.
    Raises ``InvalidInput``: ``scan.no_code``, ``scan.several_codes`` or a parse rule.
    """
    if isinstance(source, str):
        return parse_code(source)
    codes = distinct_codes(read_image(source))
    if not codes:
        raise InvalidInput("no code found in the image", rule="scan.no_code")
    if len(codes) > 1:
        raise InvalidInput(
            f"the image holds {len(codes)} different codes; scan one at a time",
            rule="scan.several_codes",
        )
    return codes[0]


def distinct_codes(scans: Iterable[Scan]) -> list[Code]:
    """The different codes among ``scans``, in reading order: a label's DataMatrix and its
    QR twin name the same unit, so they count once."""
    seen: dict[Code, Code] = {}
    for scan in scans:
        seen.setdefault(_identity(scan.code), scan.code)
    return list(seen.values())


def _identity(code: Code) -> Code:
    """What a code says, whichever symbol carried it (a DataMatrix and its QR twin agree)."""
    return replace(code, symbology=None) if isinstance(code, GS1Data) else code
