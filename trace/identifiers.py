"""GS1 identifiers: GTIN, GLN, serial and lot values, and GS1 Digital Link paths.

Check digits are verified with ``biip`` (GS1 General Specifications §7.9, mod-10). Serial and
lot numbers are limited to GS1's AI encodable character set 82 (GS1 GenSpecs §7.11, figure
7.11-1), up to 20 characters (AI 10 and AI 21 are X..20). Digital Link paths follow the GS1
Digital Link URI syntax 1.x: primary key ``/01/{gtin}``, qualifiers ``/10/{lot}/21/{serial}``
in that order, data attributes such as ``17`` (expiry, YYMMDD) in the query string.
"""

from __future__ import annotations

import datetime as dt
import string
from urllib.parse import quote

from biip import ParseError
from biip.gln import Gln
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

from medtrace.errors import InvalidInput

#: GS1 AI encodable character set 82.
CSET82 = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")
_MAX_X20 = 20


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
    bad = sorted(set(value) - CSET82)
    if bad:
        raise InvalidInput(
            f"{field} {value!r} has characters outside GS1's set 82: {''.join(bad)!r}",
            rule="gs1.bad_character",
        )
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
