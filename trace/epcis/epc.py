"""EPC identifiers in EPCIS 2.0: GS1 Digital Link URIs and EPC URNs (GS1 EPC Tag Data
Standard §6), in and out.

medtrace writes the canonical GS1 Digital Link form on ``https://id.gs1.org`` (the form the
CBV 2.0 event hash normalises to) and reads either form: ``urn:epc:id:sgtin:``
CompanyPrefix.IndicatorItemRef.Serial, ``urn:epc:id:sscc:`` CompanyPrefix.ExtSerialRef,
``urn:epc:id:sgln:`` CompanyPrefix.LocationRef.Extension, ``urn:epc:id:pgln:``
CompanyPrefix.PartyRef, or a Digital Link URI on any host (``/01/{gtin}/21/{serial}``,
``/00/{sscc}``, ``/414/{gln}``, ``/417/{party gln}``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote, unquote

import biip
from biip.checksums import gs1_standard_check_digit

from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import check_x20, parse_gln, parse_gtin
from medtrace.schemas.capture import parse_sscc

DL_HOST = "https://id.gs1.org"


@dataclass(frozen=True)
class Epc:
    """A parsed EPC: a serialised unit, a container (SSCC) or a place (GLN)."""

    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None
    gln: str | None = None


def unit_uri(gtin: str, serial: str) -> str:
    """The Digital Link URI of a serialised unit (SGTIN)."""
    return f"{DL_HOST}/01/{gtin}/21/{quote(serial, safe='')}"


def lot_uri(gtin: str, lot: str) -> str:
    """The Digital Link URI of a lot, as an EPC class (LGTIN: GTIN + batch/lot)."""
    return f"{DL_HOST}/01/{gtin}/10/{quote(lot, safe='')}"


def sscc_uri(sscc: str) -> str:
    """The Digital Link URI of a container (SSCC)."""
    return f"{DL_HOST}/00/{sscc}"


def gln_uri(gln: str) -> str:
    """The Digital Link URI of a place or party (GLN, AI 414)."""
    return f"{DL_HOST}/414/{gln}"


def _bad(value: str, why: str) -> InvalidInput:
    return InvalidInput(f"{value!r} is not a GS1 EPC: {why}", rule="epcis.bad_epc", epc=value)


def _with_check_digit(digits: str) -> str:
    """Append the GS1 mod-10 check digit (GS1 General Specifications §7.9.1)."""
    return digits + str(gs1_standard_check_digit(digits))


def _urn_parts(value: str, scheme: str, count: int) -> list[str]:
    # the last part may hold dots: an SGTIN's serial is any of set 82, '.' included (TDS §6.3)
    parts = value[len(f"urn:epc:id:{scheme}:") :].split(".", count - 1)
    if len(parts) != count or not all(parts):
        raise _bad(value, f"an {scheme} URN has {count} dot-separated parts")
    return parts


def parse_epc(value: str) -> Epc:
    """Parse an EPC URN or Digital Link URI; ``InvalidInput`` (``epcis.bad_epc``) if it is not
    a GS1 key medtrace knows (SGTIN, SSCC, SGLN) or its check digit is wrong."""
    if value.startswith("urn:epc:id:sgtin:"):
        prefix, item, serial = _urn_parts(value, "sgtin", 3)
        if not (prefix + item).isdigit() or len(prefix + item) != 13:
            raise _bad(value, "company prefix and item reference make 13 digits")
        gtin = _with_check_digit(item[0] + prefix + item[1:])
        return Epc(gtin=gtin, serial=check_x20(unquote(serial), field="serial"))
    if value.startswith("urn:epc:id:sscc:"):
        prefix, serial_ref = _urn_parts(value, "sscc", 2)
        if not (prefix + serial_ref).isdigit() or len(prefix + serial_ref) != 17:
            raise _bad(value, "company prefix and serial reference make 17 digits")
        return Epc(sscc=_with_check_digit(serial_ref[0] + prefix + serial_ref[1:]))
    if value.startswith("urn:epc:id:sgln:"):
        prefix, location, _extension = _urn_parts(value, "sgln", 3)
        if not (prefix + location).isdigit() or len(prefix + location) != 12:
            raise _bad(value, "company prefix and location reference make 12 digits")
        return Epc(gln=_with_check_digit(prefix + location))
    if value.startswith("urn:epc:id:pgln:"):  # a party (an owning_party source/destination)
        prefix, party = _urn_parts(value, "pgln", 2)
        if not (prefix + party).isdigit() or len(prefix + party) != 12:
            raise _bad(value, "company prefix and party reference make 12 digits")
        return Epc(gln=_with_check_digit(prefix + party))
    if value.startswith(("https://", "http://")):
        return _parse_digital_link(value)
    raise _bad(value, "expected urn:epc:id:sgtin/sscc/sgln/pgln or a GS1 Digital Link URI")


def _parse_digital_link(value: str) -> Epc:
    link = biip.parse(value).gs1_digital_link_uri
    if link is None:
        raise _bad(value, "not a GS1 Digital Link URI")
    ais = {e.ai.ai: e.value for e in link.element_strings}
    if "01" in ais and "21" in ais:
        return Epc(gtin=parse_gtin(ais["01"]), serial=check_x20(ais["21"], field="serial"))
    if "00" in ais:
        return Epc(sscc=parse_sscc(ais["00"]))
    for ai in ("414", "417"):  # a place's GLN, a party's GLN
        if ai in ais:
            return Epc(gln=parse_gln(ais[ai]))
    raise _bad(value, "names no serialised GTIN (01 + 21), SSCC (00) or GLN (414, 417)")


@functools.lru_cache(maxsize=1024)
def parse_location(value: str) -> str:
    """The GLN of a readPoint / bizLocation / source / destination id.

    Remembered: a document names the same few places in thousands of events, and parsing
    a Digital Link through biip took an eighth of a 10 000-event capture (py-spy)."""
    epc = parse_epc(value)
    if epc.gln is None:
        raise _bad(value, "a location is a GLN (urn:epc:id:sgln:… or …/414/…)")
    return epc.gln
