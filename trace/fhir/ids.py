"""FHIR logical ids for GS1 keys.

A FHIR id is 1 to 64 of ``[A-Za-z0-9.-]``, but a GS1 serial or lot may hold any of the 82
characters of GS1's set. A value of letters and digits only is used as it is; any other is
written ``.x`` + its UTF-8 bytes in hex, which no plain value can be, so ids never collide
and always decode.
"""

from __future__ import annotations

import re

from medtrace.errors import NotFound

_PLAIN = re.compile(r"[A-Za-z0-9]+")
_ENCODED = ".x"


def encode_part(value: str) -> str:
    """A GS1 value as an id fragment."""
    return value if _PLAIN.fullmatch(value) else _ENCODED + value.encode().hex()


def decode_part(fragment: str) -> str:
    """The GS1 value of an id fragment; ``NotFound`` if it cannot be one."""
    if _PLAIN.fullmatch(fragment):
        return fragment
    if fragment.startswith(_ENCODED):
        try:
            return bytes.fromhex(fragment[len(_ENCODED) :]).decode()
        except ValueError:
            pass
    raise NotFound(f"{fragment!r} is not a medtrace id fragment", rule="fhir.bad_id")


def gtin_and_value(resource_id: str) -> tuple[str, str]:
    """Split ``{gtin14}-{fragment}`` (a Device or Medication id)."""
    gtin, dash, fragment = resource_id.partition("-")
    if not (dash and len(gtin) == 14 and gtin.isascii() and gtin.isdigit() and fragment):
        raise NotFound(f"no resource with id {resource_id!r}", rule="fhir.bad_id")
    return gtin, decode_part(fragment)


def unit_id(gtin: str, serial: str) -> str:
    """The id of a unit's Device."""
    return f"{gtin}-{encode_part(serial)}"


def lot_id(gtin: str, lot: str) -> str:
    """The id of a lot's Medication."""
    return f"{gtin}-{encode_part(lot)}"
