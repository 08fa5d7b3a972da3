"""Keyboard-wedge input: what a handheld scanner types, one code a line.

A wedge scanner "types" the symbol's data followed by Enter. GS1 symbols carry FNC1 as the
group separator (ASCII 29, ``\\x1d``) after a variable-length element that is not last, but
a keyboard cannot type ASCII 29 everywhere, so many scanners are configured to send a
stand-in instead (``<GS>``, ``^``, ``{GS}``, ``~1``...). The station is told which stand-ins
its scanner sends and turns them back into ``\\x1d`` before parsing; symbology identifiers
(``]d2``, ``]Q3``, ``]C1``, ``]e0``) and the ``(01)…`` form pass through to
:func:`medtrace.protocol.identifiers.parse_code`, which handles them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TextIO

from medtrace.protocol.identifiers import GS, Code, parse_code

#: Stand-ins for FNC1 that scanners are commonly configured to send; opt-in per station.
COMMON_FNC1_SUBSTITUTES = ("<GS>", "{GS}", "[GS]", "~1")


def normalise(line: str, fnc1_substitutes: Sequence[str] = ()) -> str:
    """The scanned text as the symbol holds it: line ends and surrounding blanks dropped,
    each configured FNC1 stand-in replaced by ``\\x1d``."""
    text = line.strip(" \t\r\n")
    for substitute in fnc1_substitutes:
        text = text.replace(substitute, GS)
    return text


def parse_wedge(line: str, fnc1_substitutes: Sequence[str] = ()) -> Code:
    """One scanned line as a parsed code; ``InvalidInput`` with the parser's rule if it is
    not a code medtrace reads."""
    return parse_code(normalise(line, fnc1_substitutes))


def scanned_lines(stream: TextIO) -> Iterator[str]:
    """The non-blank lines a scanner types, each the moment its Enter arrives."""
    for line in iter(stream.readline, ""):
        if line.strip():
            yield line
