"""GS1 identifiers (``medtrace.identifiers``), checked against the GS1 rules themselves.

Expected values come from the standards, not from the module or ``biip``:

* check digits: GS1 General Specifications §7.9 (mod 10; weights 3, 1, 3, ... from the
  right, the check digit excluded), implemented below in ``gs1_check_digit``;
* serials and lots: AI 10 and AI 21 are X..20 over the AI encodable character set 82
  (GenSpecs figure 7.11-1): ``!"%&'()*+,-./0-9:;<=>?A-Z_a-z``;
* AI 17 is YYMMDD, day ``00`` meaning the last day of the month;
* GS1 Digital Link: ``/01/{gtin}/10/{lot}/21/{serial}`` with data attributes such as 17 in
  the query string; AI values are percent-encoded wherever a character is not an RFC 3986
  unreserved character (A-Z a-z 0-9 - . _ ~), as GS1's reference Syntax Engine does, so in
  set 82 exactly ``!"%&'()*+,/:;<=>?`` are encoded and ``-._`` are not.
"""

from __future__ import annotations

import datetime as dt
import string
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medtrace.errors import InvalidInput, MedtraceError
from medtrace.identifiers import (
    check_x20,
    digital_link_path,
    in_company_prefix,
    parse_expiry,
    parse_gln,
    parse_gtin,
)

SET_82 = string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_"
# Printable ASCII outside set 82 (94 - 82 = 12 characters), plus a few non-ASCII ones.
NOT_SET_82 = "#$@[\\]^`{|}~" + " \x1d\t\né€\u00a0\U0001f600"
DIGITS = "0123456789"

# GS1 Digital Link / RFC 3986: the set-82 characters that must be percent-encoded in a path.
PERCENT_ENCODED = {
    "!": "%21",
    '"': "%22",
    "%": "%25",
    "&": "%26",
    "'": "%27",
    "(": "%28",
    ")": "%29",
    "*": "%2A",
    "+": "%2B",
    ",": "%2C",
    "/": "%2F",
    ":": "%3A",
    ";": "%3B",
    "<": "%3C",
    "=": "%3D",
    ">": "%3E",
    "?": "%3F",
}


def gs1_check_digit(body: str) -> str:
    """GS1 GenSpecs §7.9.1: weights 3 and 1 alternate from the rightmost digit of the body."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def with_check_digit(body: str) -> str:
    return body + gs1_check_digit(body)


def wrong_check_digits(code: str) -> list[str]:
    return [code[:-1] + d for d in DIGITS if d != code[-1]]


GTIN_8 = with_check_digit("9638507")
GTIN_12 = with_check_digit("03600029145")
GTIN_13 = with_check_digit("952123400011")
GTIN_14 = with_check_digit("1952123400011")
GTINS = [GTIN_8, GTIN_12, GTIN_13, GTIN_14]
GLN = with_check_digit("952123400000")


def test_the_check_digit_helper_agrees_with_published_examples() -> None:
    # the usual textbook EAN-8, UPC-A and EAN-13 symbols, and this project's test GTIN
    assert with_check_digit("9638507") == "96385074"
    assert with_check_digit("03600029145") == "036000291452"
    assert with_check_digit("400638133393") == "4006381333931"
    assert with_check_digit("0952123400011") == "09521234000112"
    assert with_check_digit("952123400000") == "9521234000006"


# --- GTIN -------------------------------------------------------------------------------


@pytest.mark.parametrize("gtin", GTINS, ids=["GTIN-8", "GTIN-12", "GTIN-13", "GTIN-14"])
def test_parse_gtin_accepts_each_length_and_returns_14_digits(gtin: str) -> None:
    assert parse_gtin(gtin) == gtin.rjust(14, "0")


def test_parse_gtin_keeps_a_gtin_14_as_it_is() -> None:
    assert parse_gtin("09521234000112") == "09521234000112"
    assert parse_gtin(GTIN_14) == GTIN_14


@pytest.mark.parametrize(
    "bad", [w for g in GTINS for w in wrong_check_digits(g)], ids=lambda v: f"{len(v)}:{v}"
)
def test_parse_gtin_refuses_every_wrong_check_digit(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_gtin(bad)
    assert caught.value.rule == "gs1.bad_check_digit"
    assert caught.value.context == {"field": "gtin"}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1234567",
        "123456789",
        "1234567890",
        "12345678901",
        "123456789012345",
        "1" * 18,
        "0952123400011A",
        "09521234-00112",
        " 9521234000112",
        "9521234000112 ",
        "+9521234000112",
        "-9521234000112",
        "9521234000112\n",
        "0952123400011.",
        "09521234 000112",
    ],
)
def test_parse_gtin_refuses_wrong_lengths_and_non_digits(bad: str) -> None:
    with pytest.raises(InvalidInput, match="must be 8, 12, 13 or 14 digits") as caught:
        parse_gtin(bad)
    assert caught.value.rule == "gs1.gtin_format"


@pytest.mark.parametrize(
    "bad",
    ["\u0660" * 8, "\u0660" * 14, "\u0660" * 13 + "0", "\u00b2" * 8, "\uff10" * 13 + "0"],
    ids=["arabic-8", "arabic-14", "arabic-13+ascii", "superscript-8", "fullwidth-14"],
)
def test_parse_gtin_refuses_non_ascii_digits(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_gtin(bad)
    assert caught.value.rule == "gs1.gtin_format"


@given(body=st.text(alphabet=DIGITS, min_size=13, max_size=13))
def test_any_valid_gtin_14_round_trips(body: str) -> None:
    gtin = with_check_digit(body)
    assert parse_gtin(gtin) == gtin


@given(
    body=st.sampled_from([7, 11, 12]).flatmap(
        lambda n: st.text(alphabet=DIGITS, min_size=n, max_size=n)
    )
)
def test_any_valid_short_gtin_is_padded_to_14(body: str) -> None:
    gtin = with_check_digit(body)  # GTIN-8, GTIN-12 or GTIN-13
    padded = gtin.rjust(14, "0")
    assert parse_gtin(gtin) == padded
    # zero padding keeps the check digit valid: the GTIN-14 form parses to itself
    assert parse_gtin(padded) == padded


@given(body=st.text(alphabet=DIGITS, min_size=13, max_size=13), data=st.data())
def test_any_wrong_check_digit_on_a_gtin_14_is_refused(body: str, data: st.DataObject) -> None:
    good = gs1_check_digit(body)
    wrong = data.draw(st.sampled_from([d for d in DIGITS if d != good]))
    with pytest.raises(InvalidInput) as caught:
        parse_gtin(body + wrong)
    assert caught.value.rule == "gs1.bad_check_digit"


# --- GLN --------------------------------------------------------------------------------


def test_parse_gln_accepts_a_valid_gln() -> None:
    assert parse_gln(GLN) == GLN == "9521234000006"
    assert parse_gln("9525678000004") == "9525678000004"


@given(body=st.text(alphabet=DIGITS, min_size=12, max_size=12))
def test_any_valid_gln_round_trips(body: str) -> None:
    gln = with_check_digit(body)
    assert parse_gln(gln) == gln


@pytest.mark.parametrize("bad", wrong_check_digits(GLN))
def test_parse_gln_refuses_every_wrong_check_digit(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_gln(bad)
    assert caught.value.rule == "gs1.bad_check_digit"
    assert caught.value.context == {"field": "gln"}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "952123400000",
        "09521234000006",
        "95212340000",
        "952123400000A",
        " 952123400000",
        "9521234000006\n",
        "952123400000.",
        "+952123400000",
    ],
)
def test_parse_gln_refuses_wrong_lengths_and_non_digits(bad: str) -> None:
    with pytest.raises(InvalidInput, match="must be 13 digits") as caught:
        parse_gln(bad)
    assert caught.value.rule == "gs1.gln_format"


@pytest.mark.parametrize(
    "bad", ["\u0660" * 13, "\uff10" * 13, "\u00b2" * 13], ids=["arabic", "fullwidth", "superscript"]
)
def test_parse_gln_refuses_non_ascii_digits(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_gln(bad)
    assert caught.value.rule == "gs1.gln_format"


# --- serial and lot (X..20, set 82) -------------------------------------------------------


def test_set_82_has_82_characters() -> None:
    assert len(set(SET_82)) == 82
    assert set(SET_82) | set("#$@[\\]^`{|}~") == {chr(c) for c in range(0x21, 0x7F)}


@pytest.mark.parametrize("field", ["serial", "lot"])
def test_check_x20_accepts_every_set_82_character(field: str) -> None:
    for start in range(0, len(SET_82), 20):
        chunk = SET_82[start : start + 20]
        assert check_x20(chunk, field=field) == chunk


@pytest.mark.parametrize("value", ["1", "A" * 20, "S/N-01.a_B", "%25", "\"'<>"])
def test_check_x20_returns_valid_values_unchanged(value: str) -> None:
    assert check_x20(value, field="serial") == value


@pytest.mark.parametrize(
    ("field", "rule"), [("serial", "gs1.missing_serial"), ("lot", "gs1.missing_lot")]
)
def test_check_x20_refuses_an_empty_value_naming_the_field(field: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match=f"^{field} is missing$") as caught:
        check_x20("", field=field)
    assert caught.value.rule == rule


@pytest.mark.parametrize("field", ["serial", "lot"])
def test_check_x20_refuses_more_than_20_characters(field: str) -> None:
    with pytest.raises(InvalidInput, match="longer than 20 characters") as caught:
        check_x20("A" * 21, field=field)
    assert caught.value.rule == "gs1.too_long"


@pytest.mark.parametrize("char", list(NOT_SET_82), ids=lambda c: f"U+{ord(c):04X}")
def test_check_x20_refuses_characters_outside_set_82(char: str) -> None:
    for value in (char, f"AB{char}12", f"{char}" * 3):
        with pytest.raises(InvalidInput, match="outside GS1's set 82") as caught:
            check_x20(value, field="serial")
        assert caught.value.rule == "gs1.bad_character"


@given(value=st.text(alphabet=SET_82, min_size=1, max_size=20))
def test_any_set_82_value_up_to_20_characters_is_accepted(value: str) -> None:
    assert check_x20(value, field="lot") == value


# --- AI 17 expiry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("261231", dt.date(2026, 12, 31)),
        ("261200", dt.date(2026, 12, 31)),
        ("240200", dt.date(2024, 2, 29)),
        ("250200", dt.date(2025, 2, 28)),
        ("240229", dt.date(2024, 2, 29)),
        ("260400", dt.date(2026, 4, 30)),
        ("260100", dt.date(2026, 1, 31)),
        ("280715", dt.date(2028, 7, 15)),
    ],
)
def test_parse_expiry_reads_yymmdd_with_day_00_as_the_last_day(
    yymmdd: str, expected: dt.date
) -> None:
    assert parse_expiry(yymmdd) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "260231",
        "261301",
        "26120",
        "250229",
        "260431",
        "260001",
        "261232",
        "2612000",
        "",
        "26-1-1",
        "2612OO",
        " 61200",
        "261200\n",
    ],
)
def test_parse_expiry_refuses_impossible_or_malformed_dates(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_expiry(bad)
    assert caught.value.rule == "gs1.bad_date"


# --- Digital Link -----------------------------------------------------------------------


def test_digital_link_path_orders_gtin_lot_serial_and_puts_expiry_in_the_query() -> None:
    path = digital_link_path("09521234000112", "S1", lot="L1", expiry=dt.date(2026, 12, 31))
    assert path == "/01/09521234000112/10/L1/21/S1?17=261231"


def test_digital_link_path_without_lot_or_expiry() -> None:
    assert digital_link_path("09521234000112", "S1") == "/01/09521234000112/21/S1"
    assert (
        digital_link_path("09521234000112", "S1", expiry=dt.date(2027, 2, 28))
        == "/01/09521234000112/21/S1?17=270228"
    )
    assert digital_link_path("09521234000112", "S1", lot="L1") == "/01/09521234000112/10/L1/21/S1"


@pytest.mark.parametrize(("char", "encoded"), sorted(PERCENT_ENCODED.items()))
def test_digital_link_path_percent_encodes_reserved_set_82_characters(
    char: str, encoded: str
) -> None:
    path = digital_link_path("09521234000112", f"S{char}1", lot=f"L{char}2")
    assert path == f"/01/09521234000112/10/L{encoded}2/21/S{encoded}1"


def test_digital_link_path_leaves_unreserved_characters_alone() -> None:
    path = digital_link_path("09521234000112", "a-b.c_D9", lot="X.Y-Z_0")
    assert path == "/01/09521234000112/10/X.Y-Z_0/21/a-b.c_D9"


def test_digital_link_path_encodes_a_slash_in_the_lot() -> None:
    path = digital_link_path("09521234000112", "S1", lot="2024/07")
    assert path == "/01/09521234000112/10/2024%2F07/21/S1"


@given(
    serial=st.text(alphabet=SET_82, min_size=1, max_size=20),
    lot=st.text(alphabet=SET_82, min_size=1, max_size=20),
)
def test_digital_link_path_segments_decode_back_to_the_values(serial: str, lot: str) -> None:
    path = digital_link_path("09521234000112", serial, lot=lot, expiry=dt.date(2026, 12, 31))
    head, query = path.split("?")
    assert query == "17=261231"
    segments = head.split("/")
    assert segments[:4] == ["", "01", "09521234000112", "10"]
    assert segments[5] == "21"
    assert len(segments) == 7
    assert unquote(segments[4]) == lot
    assert unquote(segments[6]) == serial
    assert set(segments[4] + segments[6]) <= set(string.ascii_letters + string.digits + "-._%")


# --- company prefix ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gtin14", "prefix", "expected"),
    [
        ("09521234000112", "9521234", True),
        ("19521234000119", "9521234", True),  # indicator digit 1, same company prefix
        ("09521234000112", "952123400", True),
        ("09521234000112", "9521235", False),
        ("09521234000112", "0952123", False),  # the indicator digit is not part of it
        ("09525678000119", "9521234", False),
    ],
)
def test_in_company_prefix(gtin14: str, prefix: str, expected: bool) -> None:
    assert in_company_prefix(gtin14, prefix) is expected


# --- fuzz: only InvalidInput ever escapes -------------------------------------------------

digit_like = st.characters(categories=["Nd", "No"])
fuzz_text = (
    st.text()
    | st.text(alphabet=DIGITS, max_size=16)
    | st.text(alphabet=st.sampled_from(DIGITS) | digit_like, min_size=6, max_size=14)
    | st.text(alphabet=st.sampled_from(SET_82) | st.characters(), max_size=24)
)


def _only_invalid_input(func: object, value: str, **kwargs: object) -> None:
    try:
        func(value, **kwargs)  # type: ignore[operator]
    except InvalidInput as exc:
        assert isinstance(exc, MedtraceError)
        assert exc.rule.startswith("gs1.")


@given(value=fuzz_text)
def test_parse_gtin_raises_only_invalid_input(value: str) -> None:
    _only_invalid_input(parse_gtin, value)


@given(value=fuzz_text)
def test_parse_gln_raises_only_invalid_input(value: str) -> None:
    _only_invalid_input(parse_gln, value)


@given(value=fuzz_text, field=st.sampled_from(["serial", "lot"]))
def test_check_x20_raises_only_invalid_input(value: str, field: str) -> None:
    _only_invalid_input(check_x20, value, field=field)


@given(value=fuzz_text | st.text(alphabet=DIGITS, min_size=6, max_size=6))
def test_parse_expiry_raises_only_invalid_input(value: str) -> None:
    _only_invalid_input(parse_expiry, value)
