"""Identifiers on packs and devices: GS1 keys, GS1 Digital Link, HIBC and China's drug code.

Everything a scanner or a camera produces is parsed here, and every refusal is an
``InvalidInput`` naming its rule. GS1 parsing is ``biip``'s; this module adds what it lacks
(the named errors, HIBC, China's drug traceability code).

* GS1 element strings (GS1 General Specifications §3, §7.8): with or without a symbology
  identifier (``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR, ``]C1`` GS1-128, ``]e0`` GS1 DataBar),
  FNC1 sent as the GS character ``\\x1d``, or the human-readable form ``(01)…(17)…``. AIs 00
  (SSCC), 01 (GTIN), 10 (lot), 11 (production date), 17 (expiry), 21 (serial), 414 and 415
  (GLNs) are read into :class:`GS1Data`; check digits are GS1's mod-10 (§7.9).
* Serial and lot numbers are limited to GS1's AI encodable character set 82 (GenSpecs §7.11,
  figure 7.11-1), up to 20 characters (AI 10 and AI 21 are X..20).
* Dates are YYMMDD with GS1's sliding century (§7.12); day ``00`` is the last day of the month.
* GS1 Digital Link URI syntax 1.x: primary key ``/01/{gtin}`` with qualifiers
  ``/10/{lot}/21/{serial}`` in that order, or ``/00/{sscc}``; data attributes such as ``17``
  in the query string. Any host is accepted when parsing.
* HIBC LIC (ANSI/HIBC 2.6): primary data ``+LLLLP…PU`` and secondary data (``$$`` lot or
  ``$$+`` serial, with an expiry format flag), separate or concatenated with ``/``; the mod-43
  check character closes each structure, and a separate secondary's link character repeats the
  primary's check character.
* China's drug traceability code (药品追溯码, NMPA): 20 digits, a 7-digit drug identification
  code, a 9-digit serial and 4 check digits that only the issuing agency can verify.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from biip import ParseError
from biip.gln import Gln
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

from medtrace.errors import InvalidInput

#: GS1 AI encodable character set 82.
CSET82 = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")
#: The GS character, which scanners send for FNC1 (a separator after a variable-length AI).
GS = "\x1d"
#: Symbology identifiers (ISO/IEC 15424) of the symbols that carry GS1 element strings.
GS1_SYMBOLOGIES = frozenset({"]d2", "]Q3", "]C1", "]e0", "]J1"})
_MAX_X20 = 20
_SYMBOLOGY = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_BIIP_MISMATCH = re.compile(r"Failed to match '(.*)' with GS1 AI \((\d+)\)", re.DOTALL)
_BIIP_DATE = re.compile(r"GS1 AI \((\d+)\) date/time from '(.*)'", re.DOTALL)
_BIIP_NO_AI = re.compile(r"Failed to get GS1 Application Identifier from '(.*)'", re.DOTALL)
_FIELDS = {
    "00": "SSCC",
    "01": "GTIN",
    "10": "lot",
    "11": "production date",
    "17": "expiry date",
    "21": "serial",
    "414": "GLN",
    "415": "GLN",
}
_Parse = Callable[[str], GS1Message]
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})


def _ascii_digits(value: str) -> bool:
    """0-9 only: ``str.isdigit`` also accepts Arabic-Indic, full-width and superscript digits."""
    return value.isascii() and value.isdigit()


def parse_gtin(value: str) -> str:
    """Validate a GTIN-8/12/13/14 and return it as 14 digits; raise ``InvalidInput`` if not."""
    if not _ascii_digits(value) or len(value) not in (8, 12, 13, 14):
        raise InvalidInput(f"GTIN {value!r} must be 8, 12, 13 or 14 digits", rule="gs1.gtin_format")
    try:
        return Gtin.parse(value).as_gtin_14()
    except ParseError as exc:
        raise InvalidInput(str(exc), rule="gs1.bad_check_digit", field="gtin") from exc


def parse_gln(value: str) -> str:
    """Validate a 13-digit GLN (check digit included); raise ``InvalidInput`` if not."""
    if not _ascii_digits(value) or len(value) != 13:
        raise InvalidInput(f"GLN {value!r} must be 13 digits", rule="gs1.gln_format")
    try:
        return Gln.parse(value).value
    except ParseError as exc:
        raise InvalidInput(str(exc), rule="gs1.bad_check_digit", field="gln") from exc


def check_x20(value: str, *, field: str) -> str:
    """Check a serial (AI 21) or lot (AI 10): 1 to 20 characters of the set 82."""
    if not value:
        raise InvalidInput(f"{field} is missing", rule=f"gs1.missing_{field}")
    if len(value) > _MAX_X20:
        raise InvalidInput(f"{field} {value!r} is longer than 20 characters", rule="gs1.too_long")
    _check_set_82(value, f"the {field}", field=field)
    return value


def parse_expiry(yymmdd: str) -> dt.date:
    """AI 17 (YYMMDD): GS1's sliding century, day ``00`` = the last day of the month."""
    if len(yymmdd) != 6 or not _ascii_digits(yymmdd):
        raise InvalidInput(f"expiry {yymmdd!r} must be YYMMDD", rule="gs1.bad_date")
    try:
        date = GS1Message.parse("17" + yymmdd).element_strings[0].date
    except ParseError as exc:
        raise InvalidInput(f"expiry {yymmdd!r} is not a date", rule="gs1.bad_date") from exc
    assert date is not None
    return date


def in_company_prefix(gtin14: str, company_prefix: str) -> bool:
    """Whether a GTIN-14 was allocated from a GS1 company prefix (after the indicator digit)."""
    return gtin14[1:].startswith(company_prefix)


def digital_link_path(
    gtin14: str, serial: str, *, lot: str | None = None, expiry: dt.date | None = None
) -> str:
    """The GS1 Digital Link path of a serialised unit, e.g. ``/01/…/10/…/21/…?17=YYMMDD``."""
    path = f"/01/{gtin14}"
    if lot:
        path += f"/10/{quote(lot, safe='')}"
    path += f"/21/{quote(serial, safe='')}"
    if expiry:
        path += f"?17={expiry:%y%m%d}"
    return path


# --- parsed codes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GS1Data:
    """What a GS1 code says: its key (GTIN + serial, or SSCC) and the attributes medtrace uses.

    ``symbology`` is the symbology identifier the scanner sent (``]d2``...), if any.
    """

    gtin: str | None = None
    serial: str | None = None
    lot: str | None = None
    expiry: dt.date | None = None
    production_date: dt.date | None = None
    sscc: str | None = None
    location_gln: str | None = None
    invoicing_gln: str | None = None
    symbology: str | None = None

    def unit_key(self) -> tuple[str, str]:
        """The serialised unit this code names, ``(gtin, serial)``.

        Raises ``InvalidInput`` (``gs1.missing_gtin`` / ``gs1.missing_serial``) when the code
        does not name one unit: custody is tracked per serialised unit (DESIGN.md).
        """
        if self.gtin is None:
            raise InvalidInput("the code carries no GTIN (AI 01)", rule="gs1.missing_gtin")
        if self.serial is None:
            raise InvalidInput(
                f"GTIN {self.gtin} has no serial (AI 21); this unit must be serialised",
                rule="gs1.missing_serial",
            )
        return self.gtin, self.serial

    def key(self) -> str:
        """The GS1 key as a Digital Link path: ``/01/{gtin}/21/{serial}`` or ``/00/{sscc}``.

        Raises ``InvalidInput`` when the code carries neither an SSCC nor a serialised GTIN.
        """
        if self.sscc is not None:
            return f"/00/{self.sscc}"
        gtin, serial = self.unit_key()
        return f"/01/{gtin}/21/{quote(serial, safe='')}"

    def _elements(self) -> list[tuple[str, str]]:
        """The AIs and values present, fixed-length AIs first and the serial last: the order
        that needs fewest FNC1 separators (GenSpecs §7.8.5)."""
        parts = [
            ("00", self.sscc),
            ("01", self.gtin),
            ("11", self.production_date and f"{self.production_date:%y%m%d}"),
            ("17", self.expiry and f"{self.expiry:%y%m%d}"),
            ("414", self.location_gln),
            ("415", self.invoicing_gln),
            ("10", self.lot),
            ("21", self.serial),
        ]
        return [(ai, value) for ai, value in parts if value]

    def hri(self) -> str:
        """The human-readable interpretation ``(01)…(17)…(10)…(21)…`` (GenSpecs §4.15).

        Ambiguous when a value holds a parenthesis: a person reads it, a machine takes
        :meth:`bracketed`.
        """
        return "".join(f"({ai}){value}" for ai, value in self._elements())

    def bracketed(self) -> str:
        """The bracketed AI form barcode encoders take (GS1 Barcode Syntax Engine, zxing-cpp):
        the HRI with each ``(`` inside a value escaped as ``\\(``, so that every value of set
        82 is printable and reads back as it was."""
        escaped = ((ai, value.replace("(", r"\(")) for ai, value in self._elements())
        return "".join(f"({ai}){value}" for ai, value in escaped)

    def element_string(self) -> str:
        """The element string as a scanner sends it, FNC1 written as ``\x1d`` after each
        variable-length AI (10, 21) that is not last (GenSpecs §7.8.5.2)."""
        elements = self._elements()
        return "".join(
            ai + value + (GS if ai in ("10", "21") and i < len(elements) - 1 else "")
            for i, (ai, value) in enumerate(elements)
        )

    def digital_link_uri(self, base_url: str) -> str:
        """The GS1 Digital Link URI of this code on a resolver at ``base_url`` (this service).

        ``/00/{sscc}`` for a logistic unit, else ``/01/{gtin}[/10/{lot}]/21/{serial}[?17=]``.
        """
        if self.sscc is not None:
            return f"{base_url.rstrip('/')}/00/{self.sscc}"
        gtin, serial = self.unit_key()
        path = digital_link_path(gtin, serial, lot=self.lot, expiry=self.expiry)
        return base_url.rstrip("/") + path


@dataclass(frozen=True)
class HIBCData:
    """A HIBC LIC code (ANSI/HIBC 2.6): labeler, product, unit of measure, and secondary data."""

    labeler: str
    product: str
    unit_of_measure: int
    lot: str | None = None
    serial: str | None = None
    expiry: dt.date | None = None
    quantity: int | None = None


#: Said plainly wherever a China drug traceability code is shown (see :class:`ChinaDrugCode`).
CN_CHECK_NOTE = (
    "The last 4 digits are check digits that only the issuing agency can verify; "
    "medtrace checks the length and the digits, not the check digits."
)


@dataclass(frozen=True)
class ChinaDrugCode:
    """China's drug traceability code (药品追溯码): 20 digits printed as Code 128.

    ``drug_id`` (7 digits) identifies the drug (药品标识码), ``serial`` (9 digits) the pack and
    ``agency_check`` (4 digits) is computed by the issuing agency: only that agency can verify
    it (:data:`CN_CHECK_NOTE`). The whole 20-digit ``code`` is the pack's key.
    """

    code: str

    @property
    def drug_id(self) -> str:
        """The 7-digit drug identification code."""
        return self.code[:7]

    @property
    def serial(self) -> str:
        """The 9-digit serial of the pack."""
        return self.code[7:16]

    @property
    def agency_check(self) -> str:
        """The 4 check digits, verifiable only by the issuing agency."""
        return self.code[16:]

    @property
    def check_note(self) -> str:
        """What medtrace could and could not check."""
        return CN_CHECK_NOTE

    @property
    def unit_serial(self) -> str:
        """The serial (AI 21) of the unit this pack is in medtrace: the whole 20-digit code.

        Its GTIN is the product the manufacturer mapped :attr:`drug_id` to; a station learns
        it from :attr:`verify_path` (``unit.gtin`` in the JSON) before signing an event.
        """
        return self.code

    @property
    def verify_path(self) -> str:
        """The path of this pack's verify page and JSON on a medtrace service."""
        return f"/cn/{self.code}"


Code = GS1Data | HIBCData | ChinaDrugCode


# --- GS1 element strings and Digital Link -----------------------------------------------------


def split_symbology(text: str) -> tuple[str | None, str]:
    """Split a leading ISO/IEC 15424 symbology identifier (``]d2``) from the data."""
    if _SYMBOLOGY.match(text):
        return text[:3], text[3:]
    return None, text


def _check_set_82(value: str, what: str, **context: str) -> None:
    """Refuse ``value`` if it holds a character outside set 82, naming ``what`` holds it."""
    bad = sorted(set(value) - CSET82, key=value.index)
    if bad:
        chars = ", ".join(repr(c) for c in bad)
        raise InvalidInput(
            f"{what} has {chars}, outside GS1's character set 82",
            rule="gs1.bad_character",
            **context,
        )


def _field(ai: str) -> str:
    """An AI as a person names it: ``the serial (AI 21)``."""
    return f"the {_FIELDS.get(ai, 'element')} (AI {ai})"


def _biip_error(exc: Exception, what: str) -> InvalidInput:
    """Translate a biip refusal once, naming the field and what is wrong with it instead of
    biip's regular expression: a character outside set 82, a value too long, a bad date."""
    match = _BIIP_MISMATCH.search(str(exc))
    if match is None:
        date = _BIIP_DATE.search(str(exc))
        if date and date.group(1) in _DATE_AIS:
            return InvalidInput(
                f"{_field(date.group(1))} {date.group(2)!r} is not a date (YYMMDD)",
                rule="gs1.bad_date",
                ai=date.group(1),
            )
        unknown = _BIIP_NO_AI.search(str(exc))
        if unknown:
            return InvalidInput(
                f"{what}: {unknown.group(1)!r} does not start with a GS1 AI (a value longer "
                "than its AI allows, or a missing GS separator before it)",
                rule="gs1.malformed",
            )
        return InvalidInput(f"{what}: {exc}", rule="gs1.malformed")
    ai = match.group(2)
    value = match.group(1)[len(ai) :]
    field = _field(ai)
    _check_set_82(value, field, ai=ai)
    if ai in _DATE_AIS:
        return InvalidInput(f"{field} {value!r} is not a date (YYMMDD)", rule="gs1.bad_date", ai=ai)
    form = GS1ApplicationIdentifier.extract(ai).format.partition("+")[2]
    rule = "gs1.too_long" if ai in ("10", "21") and len(value) > _MAX_X20 else "gs1.malformed"
    return InvalidInput(
        f"{what}: {field} {value!r} does not fit its format {form}", rule=rule, ai=ai
    )


def _check_characters(data: str, *, allowed: frozenset[str], parse: _Parse) -> None:
    """Refuse a character outside set 82 (and GS), naming the field it is in: the last AI
    of the longest prefix that parses."""
    first = next((i for i, c in enumerate(data) if c not in allowed), None)
    if first is None:
        return
    where = "the code"
    try:
        elements = parse(data[:first]).element_strings
        if elements:
            where = _field(elements[-1].ai.ai)
    except ParseError as exc:  # the character follows an AI with no value yet
        match = _BIIP_MISMATCH.search(str(exc))
        if match:
            where = _field(match.group(2))
    _check_set_82(data[first], where)


def _from_message(message: GS1Message, symbology: str | None) -> GS1Data:
    """Read the AIs medtrace uses, refusing any bad check digit or impossible value."""
    values: dict[str, str] = {}
    dates: dict[str, dt.date] = {}
    for element in message.element_strings:
        ai = element.ai.ai
        for field, error in (
            ("gtin", element.gtin_error),
            ("sscc", element.sscc_error),
            ("gln", element.gln_error),
        ):
            if error:
                raise InvalidInput(error, rule="gs1.bad_check_digit", field=field)
        if ai in values:
            raise InvalidInput(f"AI ({ai}) appears twice", rule="gs1.malformed")
        values[ai] = element.value
        if element.date is not None:
            dates[ai] = element.date
    for ai, field in (("10", "lot"), ("21", "serial")):
        if ai in values:
            check_x20(values[ai], field=field)
    if not ({"00", "01", "414", "415"} & values.keys()):
        raise InvalidInput(
            "the code carries no GS1 key (GTIN, SSCC or GLN)", rule="gs1.missing_key"
        )
    return GS1Data(
        gtin=values.get("01"),
        serial=values.get("21"),
        lot=values.get("10"),
        expiry=dates.get("17"),
        production_date=dates.get("11"),
        sscc=values.get("00"),
        location_gln=values.get("414"),
        invoicing_gln=values.get("415"),
        symbology=symbology,
    )


def parse_element_string(text: str) -> GS1Data:
    """Parse a GS1 element string as a scanner sends it, or its ``(AI)`` human-readable form.

    Accepts a leading symbology identifier and FNC1 as ``\\x1d`` (a leading one is dropped).
    Raises ``InvalidInput``: ``gs1.bad_character``, ``gs1.bad_check_digit`` (with ``field``),
    ``gs1.bad_date``, ``gs1.too_long``, ``gs1.missing_key`` or ``gs1.malformed``.
    """
    symbology, data = split_symbology(text)
    data = data.removeprefix(GS)
    hri = data.startswith("(")
    parse: _Parse = GS1Message.parse_hri if hri else GS1Message.parse
    _check_characters(data, allowed=CSET82 if hri else CSET82 | {GS}, parse=parse)
    if not data:
        raise InvalidInput("the code is empty", rule="gs1.malformed")
    try:
        message = parse(data)
    except ParseError as exc:
        raise _biip_error(exc, "not a GS1 element string") from exc
    if hri:
        _check_hri_read_whole(data, message)
    return _from_message(message, symbology)


def _check_hri_read_whole(data: str, message: GS1Message) -> None:
    """biip's ``parse_hri`` silently drops what follows a ``(`` inside a value (``(21)A(B``
    reads as serial ``A``, another unit): refuse the form rather than misread it."""
    if "".join(f"({e.ai.ai}){e.value}" for e in message.element_strings) != data:
        raise InvalidInput(
            f"{data!r} is ambiguous in the (AI) form: a value holds '(' (scan the symbol, "
            "or type the element string with GS separators)",
            rule="gs1.malformed",
        )


def parse_digital_link(uri: str) -> GS1Data:
    """Parse a GS1 Digital Link URI on any host (``/01/…/10/…/21/…?17=``, or ``/00/{sscc}``).

    Raises ``InvalidInput`` with the rules of :func:`parse_element_string`, or
    ``gs1.bad_digital_link`` when the URI does not follow the Digital Link syntax.
    """
    try:
        link = GS1DigitalLinkURI.parse(uri)
    except (ParseError, ValueError) as exc:  # ValueError: urllib refuses the URI itself
        error = _biip_error(exc, "not a GS1 Digital Link URI")
        if error.rule == "gs1.malformed":
            error.rule = "gs1.bad_digital_link"
        raise error from exc
    try:
        message = link.as_gs1_message()
    except ParseError as exc:
        raise _biip_error(exc, "not a GS1 Digital Link URI") from exc
    for element in message.element_strings:
        _check_set_82(element.value, _field(element.ai.ai), ai=element.ai.ai)
    return _from_message(message, None)


# --- HIBC ------------------------------------------------------------------------------------

_HIBC_CHARSET = string.digits + string.ascii_uppercase + "-. $/+%"
_HIBC_MAX_X18 = 18
_HIBC_PRIMARY = re.compile(r"^(?P<lic>[A-Z][A-Z0-9]{3})(?P<pcn>[A-Z0-9]{1,18})(?P<um>[0-9])$")
# Expiry format flags after "$$" (ANSI/HIBC 2.6, table 2): digits, strptime format.
_HIBC_DATES = {
    "2": (6, "%m%d%y"),
    "3": (6, "%y%m%d"),
    "4": (8, "%y%m%d%H"),
    "5": (5, "%y%j"),
    "6": (7, "%y%j%H"),
    "7": (0, ""),
}


def _check_hibc_set(data: str) -> None:
    bad = sorted(set(data) - set(_HIBC_CHARSET))
    if bad:
        raise InvalidInput(
            f"HIBC data has characters outside its set: {''.join(bad)!r}",
            rule="hibc.bad_character",
        )


def hibc_check_character(data: str) -> str:
    """The HIBC mod-43 check character of ``data`` (the ``+`` flag included).

    Each character has its Code 39 value (0-9, A-Z = 10-35, ``-`` 36, ``.`` 37, space 38,
    ``$`` 39, ``/`` 40, ``+`` 41, ``%`` 42); the check character has the value of their sum
    modulo 43. Raises ``InvalidInput`` (``hibc.bad_character``) for any other character.
    """
    _check_hibc_set(data)
    return _HIBC_CHARSET[sum(_HIBC_CHARSET.index(c) for c in data) % 43]


def _hibc_date(digits: str, fmt: str) -> dt.date:
    try:
        return dt.datetime.strptime(digits, fmt).date()
    except ValueError as exc:
        raise InvalidInput(f"HIBC date {digits!r} is not a date", rule="hibc.bad_date") from exc


def _hibc_secondary(data: str) -> dict[str, object]:
    """Secondary data without flag, link or check character: quantity, expiry, lot or serial."""
    out: dict[str, object] = {}
    if data[:1].isdigit():  # YYJJJ + lot: the oldest secondary format
        out["expiry"] = _hibc_date(data[:5], "%y%j")
        out["lot"] = data[5:]
        return out
    if not data.startswith("$"):
        raise InvalidInput(f"HIBC secondary data {data!r} is malformed", rule="hibc.malformed")
    if not data.startswith("$$"):  # "$" lot, "$+" serial, no date
        rest = data[1:]
        key = "serial" if rest.startswith("+") else "lot"
        out[key] = rest.removeprefix("+")
        return out
    rest = data[2:]
    key = "serial" if rest.startswith("+") else "lot"
    rest = rest.removeprefix("+")
    if rest[:1] in ("8", "9"):  # quantity: 2 or 5 digits
        width = 2 if rest[0] == "8" else 5
        quantity = rest[1 : 1 + width]
        if len(quantity) != width or not _ascii_digits(quantity):
            raise InvalidInput(f"HIBC quantity {quantity!r} is malformed", rule="hibc.malformed")
        out["quantity"] = int(quantity)
        rest = rest[1 + width :]
    if rest[:1] in ("0", "1"):  # MMYY, the default expiry format: the last day of the month
        month_start = _hibc_date(rest[:4], "%m%y")
        next_month = (month_start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        out["expiry"] = next_month - dt.timedelta(days=1)
        rest = rest[4:]
    elif rest[:1] in _HIBC_DATES:
        width, fmt = _HIBC_DATES[rest[0]]
        if width:
            out["expiry"] = _hibc_date(rest[1 : 1 + width], fmt)
        rest = rest[1 + width :]
    out[key] = rest
    return out


def parse_hibc(text: str, *, secondary: str | None = None) -> HIBCData:
    """Parse HIBC LIC data: a primary, a concatenated primary/secondary, or a primary and its
    separately scanned secondary (whose link character must be the primary's check character).

    Raises ``InvalidInput``: ``hibc.bad_check_character``, ``hibc.bad_link``,
    ``hibc.bad_character``, ``hibc.bad_date`` or ``hibc.malformed``.
    """
    _, data = split_symbology(text)
    if len(data) < 3 or not data.startswith("+"):
        raise InvalidInput("HIBC data starts with '+'", rule="hibc.malformed")
    _check_hibc_set(data)
    body, check = data[:-1], data[-1]
    if hibc_check_character(body) != check:
        raise InvalidInput(
            f"HIBC check character {check!r} is wrong (expected {hibc_check_character(body)!r})",
            rule="hibc.bad_check_character",
        )
    primary, _, joined = body[1:].partition("/")
    match = _HIBC_PRIMARY.match(primary)
    if match is None:
        raise InvalidInput(f"HIBC primary data {primary!r} is malformed", rule="hibc.malformed")
    fields = _hibc_secondary(joined) if joined else {}
    if secondary is not None:
        if joined:
            raise InvalidInput("secondary data given twice", rule="hibc.malformed")
        _, second = split_symbology(secondary)
        if len(second) < 3 or not second.startswith("+"):
            raise InvalidInput("HIBC secondary data starts with '+'", rule="hibc.malformed")
        if hibc_check_character(second[:-1]) != second[-1]:
            raise InvalidInput(
                "HIBC secondary check character is wrong", rule="hibc.bad_check_character"
            )
        if second[-2] != check:
            raise InvalidInput(
                "the secondary's link character does not match this primary", rule="hibc.bad_link"
            )
        fields = _hibc_secondary(second[1:-2])
    for name in ("lot", "serial"):
        value = fields.get(name)
        if isinstance(value, str) and not (0 < len(value) <= _HIBC_MAX_X18):
            raise InvalidInput(
                f"HIBC {name} {value!r} must be 1 to 18 characters", rule="hibc.malformed"
            )
    return HIBCData(
        labeler=match["lic"],
        product=match["pcn"],
        unit_of_measure=int(match["um"]),
        lot=fields.get("lot"),  # type: ignore[arg-type]
        serial=fields.get("serial"),  # type: ignore[arg-type]
        expiry=fields.get("expiry"),  # type: ignore[arg-type]
        quantity=fields.get("quantity"),  # type: ignore[arg-type]
    )


# --- China's drug traceability code -----------------------------------------------------------


def parse_cn_drug_id(value: str) -> str:
    """Validate a 7-digit drug identification code (药品标识码), the head of a China code.

    Raises ``InvalidInput`` (``cn.bad_drug_code``).
    """
    if len(value) != 7 or not _ascii_digits(value):
        raise InvalidInput(
            f"a drug identification code is 7 digits, not {value!r}", rule="cn.bad_drug_code"
        )
    return value


def cn_code_in_serial(serial: str) -> ChinaDrugCode | None:
    """The China code a unit's serial holds, if it has that form (20 ASCII digits).

    A GS1 serial may also be 20 digits: whether it *is* a China code depends on the mappings
    its manufacturer registered (``medtrace.services.cn_codes``).
    """
    if len(serial) == 20 and _ascii_digits(serial):
        return ChinaDrugCode(serial)
    return None


def parse_cn_drug_code(text: str) -> ChinaDrugCode:
    """Recognise China's 20-digit drug traceability code (ASCII digits only).

    Its 4 check digits are the issuing agency's and cannot be verified here
    (:data:`CN_CHECK_NOTE`). Raises ``InvalidInput`` (``cn.bad_code``).
    """
    _, data = split_symbology(text)
    if len(data) != 20 or not _ascii_digits(data):
        raise InvalidInput(
            f"a China drug traceability code is 20 digits, not {data!r}", rule="cn.bad_code"
        )
    return ChinaDrugCode(data)


# --- any code ---------------------------------------------------------------------------------


def parse_code(text: str) -> Code:
    """Parse whatever a scanner or camera produced: the one entry point for scanned text.

    Decides by form: ``http(s)://`` is a GS1 Digital Link URI; ``+`` starts HIBC; 20 digits
    with ``]C0`` (plain Code 128), or 20 digits not starting with ``00`` and without a GS1
    symbology identifier, are China's drug traceability code; anything else (an SSCC sent as
    ``00`` + 18 digits by a scanner that adds no identifier, for one) is a GS1 element
    string. Trailing line ends (a wedge scanner's Enter) are dropped. Raises
    ``InvalidInput`` with the rule of the failing parser.
    """
    text = text.rstrip("\r\n")
    symbology, data = split_symbology(text)
    if data.lower().startswith(("http://", "https://")):
        return parse_digital_link(data)
    if data.startswith("+"):
        return parse_hibc(text)
    twenty_digits = len(data) == 20 and _ascii_digits(data)
    if twenty_digits and (symbology == "]C0" or (symbology is None and data[:2] != "00")):
        return parse_cn_drug_code(data)
    return parse_element_string(text)


# --- serials ----------------------------------------------------------------------------------

#: Upper-case letters and digits without the look-alikes 0/O and 1/I: a subset of set 82 that
#: needs no percent-encoding in a Digital Link and reads back unambiguously from a label.
SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def random_serial(length: int = 12) -> str:
    """An unguessable serial from a CSPRNG (``secrets``): GS1 recommends non-sequential
    serials (GenSpecs §4.13, serialisation), and 12 of 32 symbols give 60 bits."""
    return "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(length))
