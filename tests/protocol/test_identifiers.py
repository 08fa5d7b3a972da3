"""GS1 identifiers (``medtrace.protocol.identifiers``), checked against the GS1 rules themselves.

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
from hypothesis import given, settings
from hypothesis import strategies as st

from medtrace.errors import InvalidInput, MedtraceError
from medtrace.protocol.identifiers import (
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
        with pytest.raises(InvalidInput, match="outside GS1's character set 82") as caught:
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


# === scanned codes: GS1 element strings, Digital Link, HIBC, China's drug code ================

from medtrace.protocol.identifiers import (  # noqa: E402
    CN_CHECK_NOTE,
    ChinaDrugCode,
    GS1Data,
    HIBCData,
    cn_code_in_serial,
    hibc_check_character,
    parse_cn_drug_code,
    parse_cn_drug_id,
    parse_code,
    parse_digital_link,
    parse_element_string,
    parse_hibc,
    random_serial,
)

GTIN = "09521234000112"
SSCC = with_check_digit("09521234000000001")
GLN_414 = GLN
GLN_415 = with_check_digit("952567800000")
FULL = GS1Data(gtin=GTIN, serial="S/N1", lot="L1", expiry=dt.date(2026, 12, 31))


def _rule(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_code(text)
    return caught.value.rule


@pytest.mark.parametrize(
    ("text", "symbology"),
    [
        (f"01{GTIN}17261231" + "10L1\x1d21S/N1", None),
        (f"]d201{GTIN}17261231" + "10L1\x1d21S/N1", "]d2"),
        (f"]Q301{GTIN}17261231" + "10L1\x1d21S/N1", "]Q3"),
        (f"]C101{GTIN}17261231" + "10L1\x1d21S/N1", "]C1"),
        (f"]e001{GTIN}17261231" + "10L1\x1d21S/N1", "]e0"),
        (f"\x1d01{GTIN}17261231" + "10L1\x1d21S/N1", None),  # FNC1 in first position
        (f"01{GTIN}21S/N1\x1d10L1\x1d17261231", None),  # any order, GS after variable AIs
        (f"(01){GTIN}(17)261231(10)L1(21)S/N1", None),
        (f"]d2(01){GTIN}(21)S/N1(10)L1(17)261231", "]d2"),
        (f"01{GTIN}17261231" + "10L1\x1d21S/N1\r\n", None),  # a wedge scanner's Enter
    ],
)
def test_element_strings_in_every_form_give_the_same_data(text: str, symbology: str | None) -> None:
    assert parse_code(text) == GS1Data(**{**FULL.__dict__, "symbology": symbology})


def test_all_the_ais_medtrace_reads() -> None:
    text = f"(00){SSCC}(11)260115(17)270100(414){GLN_414}(415){GLN_415}"
    data = parse_element_string(text)
    assert data.sscc == SSCC
    assert data.production_date == dt.date(2026, 1, 15)
    assert data.expiry == dt.date(2027, 1, 31)  # day 00: the last day of the month
    assert (data.location_gln, data.invoicing_gln) == (GLN_414, GLN_415)
    assert data.key() == f"/00/{SSCC}"


def test_hri_round_trips_through_the_parser() -> None:
    data = GS1Data(gtin=GTIN, serial="X", lot="L", expiry=dt.date(2027, 2, 28), sscc=None)
    assert data.hri() == f"(01){GTIN}(17)270228(10)L(21)X"
    assert parse_element_string(data.hri()) == data


@pytest.mark.parametrize(
    ("text", "rule", "field"),
    [
        (f"01{GTIN[:-1]}3", "gs1.bad_check_digit", "gtin"),
        (f"(01){GTIN[:-1]}9(21)A", "gs1.bad_check_digit", "gtin"),
        (f"00{SSCC[:-1]}{(int(SSCC[-1]) + 1) % 10}", "gs1.bad_check_digit", "sscc"),
        (f"01{GTIN}414{GLN[:-1]}{(int(GLN[-1]) + 1) % 10}", "gs1.bad_check_digit", "gln"),
        (f"01{GTIN}415{GLN_415[:-1]}{(int(GLN_415[-1]) + 3) % 10}", "gs1.bad_check_digit", "gln"),
    ],
)
def test_bad_check_digits_are_named_with_their_field(text: str, rule: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_code(text)
    assert caught.value.rule == rule
    assert caught.value.context["field"] == field


@pytest.mark.parametrize(
    "text",
    [
        f"01{GTIN}17260231",  # 31 February
        f"01{GTIN}17261301",  # month 13
        f"(01){GTIN}(11)250229",  # 2025 is not a leap year
        f"(01){GTIN}(17)261232",
        f"https://example.com/01/{GTIN}/21/A?17=260230",
    ],
)
def test_impossible_dates_are_bad_date(text: str) -> None:
    assert _rule(text) == "gs1.bad_date"


@pytest.mark.parametrize(
    "text",
    [f"01{GTIN}21AB#1", f"(01){GTIN}(21)S~1", f"(01){GTIN}(10)L 1(21)S1", f"01{GTIN}21Sé"],
)
def test_a_character_outside_set_82_is_bad_character(text: str) -> None:
    assert _rule(text) == "gs1.bad_character"


def test_a_unit_without_serial_is_missing_serial() -> None:
    data = parse_code(f"(01){GTIN}(10)L1(17)261231")
    assert isinstance(data, GS1Data)
    with pytest.raises(InvalidInput, match="must be serialised") as caught:
        data.unit_key()
    assert caught.value.rule == "gs1.missing_serial"
    with pytest.raises(InvalidInput) as again:
        data.key()
    assert again.value.rule == "gs1.missing_serial"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "gs1.malformed"),
        ("]d2", "gs1.malformed"),
        ("01", "gs1.malformed"),
        ("(21)", "gs1.malformed"),
        (f"01{GTIN}01{GTIN}", "gs1.malformed"),  # an AI twice
        ("(10)L1(21)S1", "gs1.missing_key"),
        (f"01{GTIN}21" + "A" * 21, "gs1.malformed"),  # AI 21 is X..20; the rest is no AI
        ("https://example.com/about", "gs1.bad_digital_link"),
        ("http://[", "gs1.bad_digital_link"),  # urllib refuses it before biip sees it
    ],
)
def test_malformed_codes_are_named(text: str, rule: str) -> None:
    assert _rule(text) == rule


# --- Digital Link ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        f"https://id.example.org/01/{GTIN}/10/L1/21/S%2FN1?17=261231",
        f"http://127.0.0.1:8000/01/{GTIN}/10/L1/21/S%2FN1?17=261200",
        f"HTTPS://example.com/prefix/01/{GTIN}/10/L1/21/S%2FN1?17=261231",
    ],
)
def test_digital_link_uris_on_any_host(uri: str) -> None:
    assert parse_code(uri) == FULL


def test_digital_link_of_an_sscc() -> None:
    assert parse_digital_link(f"https://example.com/00/{SSCC}") == GS1Data(sscc=SSCC)
    assert GS1Data(sscc=SSCC).digital_link_uri("http://h:1/") == f"http://h:1/00/{SSCC}"


def test_digital_link_build_and_parse_round_trip() -> None:
    uri = FULL.digital_link_uri("http://127.0.0.1:8000")
    assert uri == f"http://127.0.0.1:8000/01/{GTIN}/10/L1/21/S%2FN1?17=261231"
    assert parse_digital_link(uri) == FULL


def test_digital_link_refuses_a_bad_gtin() -> None:
    assert _rule(f"https://example.com/01/{GTIN[:-1]}7/21/A") == "gs1.bad_check_digit"


@given(
    serial=st.text(alphabet=SET_82, min_size=1, max_size=20),
    lot=st.text(alphabet=SET_82, min_size=1, max_size=20),
    body=st.text(alphabet=DIGITS, min_size=13, max_size=13),
    expiry=st.dates(dt.date(2000, 1, 1), dt.date(2049, 12, 31)),
)
def test_any_unit_round_trips_through_hri_element_string_and_digital_link(
    serial: str, lot: str, body: str, expiry: dt.date
) -> None:
    data = GS1Data(gtin=with_check_digit(body), serial=serial, lot=lot, expiry=expiry)
    assert parse_element_string(data.element_string()) == data
    if "(" not in serial + lot:  # the (AI) form is ambiguous with parentheses in the data
        assert parse_element_string(data.hri()) == data
    assert parse_digital_link(data.digital_link_uri("https://example.com")) == data
    raw = f"01{data.gtin}17{expiry:%y%m%d}10{lot}\x1d21{serial}"
    assert parse_code("]d2" + raw) == GS1Data(**{**data.__dict__, "symbology": "]d2"})


# --- HIBC -----------------------------------------------------------------------------------

HIBC_SET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"


def mod43(data: str) -> str:
    """ANSI/HIBC 2.6 appendix: the sum of the characters' values, modulo 43."""
    return HIBC_SET[sum(HIBC_SET.index(c) for c in data) % 43]


def test_hibc_check_character_matches_the_published_example() -> None:
    # The HIBC LIC primary example of the standard: +A123BJC5D6E71 with check character G.
    assert mod43("+A123BJC5D6E71") == "G"
    assert hibc_check_character("+A123BJC5D6E71") == "G"


def test_hibc_primary() -> None:
    assert parse_code("+A123BJC5D6E71G") == HIBCData("A123", "BJC5D6E7", 1)


@pytest.mark.parametrize(
    ("secondary", "expected"),
    [
        ("$$0927LOT7", {"lot": "LOT7", "expiry": dt.date(2027, 9, 30)}),
        ("$$3270315LOT7", {"lot": "LOT7", "expiry": dt.date(2027, 3, 15)}),
        ("$$2031527LOT7", {"lot": "LOT7", "expiry": dt.date(2027, 3, 15)}),
        ("$$527074LOT7", {"lot": "LOT7", "expiry": dt.date(2027, 3, 15)}),
        ("$$+3270315SN99", {"serial": "SN99", "expiry": dt.date(2027, 3, 15)}),
        ("$$7LOT7", {"lot": "LOT7"}),
        ("$LOT7", {"lot": "LOT7"}),
        ("$+SN99", {"serial": "SN99"}),
        ("$$812$$", {"quantity": 12, "lot": "$$"}),
        ("$$9001203270315LOT7", {"quantity": 120, "lot": "LOT7", "expiry": dt.date(2027, 3, 15)}),
        ("27074LOT7", {"lot": "LOT7", "expiry": dt.date(2027, 3, 15)}),
    ],
)
def test_hibc_secondary_concatenated_and_separate(
    secondary: str, expected: dict[str, object]
) -> None:
    primary = "+A123BJC5D6E71"
    joined = f"{primary}/{secondary}"
    want = HIBCData("A123", "BJC5D6E7", 1, **expected)  # type: ignore[arg-type]
    assert parse_code(joined + mod43(joined)) == want
    link = mod43(primary)
    separate = f"+{secondary}{link}"
    assert parse_hibc(primary + link, secondary=separate + mod43(separate)) == want


@pytest.mark.parametrize(
    ("text", "secondary", "rule"),
    [
        ("+A123BJC5D6E71H", None, "hibc.bad_check_character"),
        ("+A123BJC5D6E71g", None, "hibc.bad_character"),
        ("+1123BJC5D6E71" + mod43("+1123BJC5D6E71"), None, "hibc.malformed"),  # LIC starts A-Z
        ("+A12" + mod43("+A12"), None, "hibc.malformed"),
        ("+A123X1/$$3271340L" + mod43("+A123X1/$$3271340L"), None, "hibc.bad_date"),
        ("+A123X1/Q" + mod43("+A123X1/Q"), None, "hibc.malformed"),
        ("+A123BJC5D6E71G", "+$$7LOT7Z" + mod43("+$$7LOT7Z"), "hibc.bad_link"),
        ("+A123BJC5D6E71G", "+$$7LOT7GA", "hibc.bad_check_character"),
    ],
)
def test_hibc_refusals_are_named(text: str, secondary: str | None, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_hibc(text, secondary=secondary)
    assert caught.value.rule == rule


# --- China's drug traceability code -----------------------------------------------------------


def test_china_drug_code_is_recognised_and_split() -> None:
    code = parse_code("81234567890123456789")
    assert code == ChinaDrugCode("81234567890123456789")
    assert isinstance(code, ChinaDrugCode)
    assert (code.drug_id, code.serial, code.agency_check) == ("8123456", "789012345", "6789")
    assert "only the issuing agency can verify" in code.check_note == CN_CHECK_NOTE
    assert parse_code("]C081234567890123456789") == code  # plain Code 128


def test_china_drug_code_tells_a_station_its_unit_serial_and_where_to_learn_the_gtin() -> None:
    code = parse_code("]C081234567890123456789\r\n")
    assert isinstance(code, ChinaDrugCode)
    assert code.unit_serial == "81234567890123456789"  # AI 21 takes all 20 digits
    assert code.verify_path == "/cn/81234567890123456789"


def test_a_serial_holds_a_china_code_only_in_its_form() -> None:
    assert cn_code_in_serial("81234567890123456789") == ChinaDrugCode("81234567890123456789")
    assert cn_code_in_serial("K7Q2M9XW4H3P") is None
    assert cn_code_in_serial("８" * 20) is None  # full-width digits
    assert parse_cn_drug_id("8123456") == "8123456"
    for bad in ("812345", "81234567", "812345A", "٠" * 7):
        with pytest.raises(InvalidInput) as caught:
            parse_cn_drug_id(bad)
        assert caught.value.rule == "cn.bad_drug_code"


def test_twenty_digits_in_a_gs1_symbol_or_starting_with_00_are_gs1() -> None:
    assert parse_code(f"]C100{SSCC}") == GS1Data(sscc=SSCC, symbology="]C1")
    assert parse_code(f"00{SSCC}") == GS1Data(sscc=SSCC)  # a scanner sending no identifier
    assert parse_code(f"]C000{SSCC}") == ChinaDrugCode(f"00{SSCC}")  # plain Code 128


@pytest.mark.parametrize(
    "bad", ["8123456789012345678", "812345678901234567890", "8123456789012345678A", "٠" * 20]
)
def test_china_drug_code_refuses_anything_but_20_ascii_digits(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cn_drug_code(bad)
    assert caught.value.rule == "cn.bad_code"


# --- serials and the fuzz of the one entry point -----------------------------------------------


def test_random_serials_are_set_82_and_unguessable() -> None:
    serials = {random_serial() for _ in range(2000)}
    assert len(serials) == 2000  # 60 bits each: a repeat would mean a broken generator
    assert all(check_x20(s, field="serial") == s and len(s) == 12 for s in serials)
    assert len({s[0] for s in serials}) > 20  # spread over the alphabet, not sequential


scan_like = (
    fuzz_text
    | st.builds(
        lambda s, t: s + t,
        st.sampled_from(["]d2", "]C1", "]Q3", "]e0", "]C0", "+", "("]),
        fuzz_text,
    )
    | st.builds(lambda t: "https://example.com/" + t, st.text())
    | st.builds(lambda t: f"01{GTIN}" + t, st.text(alphabet=SET_82 + "\x1d", max_size=40))
    | st.builds(lambda t: "+A123BJC5D6E71/" + t, st.text(alphabet=HIBC_SET, max_size=30))
    # with a valid check character, so the parsing behind the check is reached
    | st.builds(lambda t: t + mod43(t), st.text(alphabet=HIBC_SET, max_size=30).map("+".__add__))
    | st.builds(
        lambda t: f"+A123X1/{t}" + mod43(f"+A123X1/{t}"), st.text(alphabet=HIBC_SET, max_size=30)
    )
    | st.builds(lambda t: "http://" + t, st.text(alphabet="[]/:%?=&#@.0123456789abc", max_size=40))
)


@settings(max_examples=500)
@given(value=scan_like)
def test_parse_code_raises_only_invalid_input(value: str) -> None:
    try:
        parse_code(value)
    except InvalidInput as exc:
        assert exc.rule.split(".")[0] in {"gs1", "hibc", "cn"}


@pytest.mark.parametrize(
    "text", [f"(01){GTIN}(21)A(B", f"(01){GTIN}(21)(B", f"(01){GTIN}(10)L(1)(21)S"]
)
def test_an_hri_with_a_parenthesis_in_a_value_is_refused_never_misread(text: str) -> None:
    with pytest.raises(InvalidInput, match="ambiguous in the \\(AI\\) form") as caught:
        parse_code(text)
    assert caught.value.rule == "gs1.malformed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"01{GTIN}\x1d21Abé", "the serial (AI 21) has 'é', outside GS1's character set 82"),
        (f"(01){GTIN}(10)Lé(21)S", "the lot (AI 10) has 'é', outside GS1's character set 82"),
        (f"https://x.org/01/{GTIN}/21/A%C3%A9", "the serial (AI 21) has 'é', outside"),
        (f"01{GTIN}\x1d10ABC\x1d21", "the serial (AI 21) '' does not fit its format X..20"),
        (f"01{GTIN}\x1d17991399", "the expiry date (AI 17) '991399' is not a date"),
    ],
)
def test_refusals_name_the_field_and_the_character_not_a_pattern(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_code(text)
    assert message in caught.value.message and "pattern" not in caught.value.message
