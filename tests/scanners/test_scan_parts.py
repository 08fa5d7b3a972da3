"""The station's parts that need no server: wedge text, tasks, verdict words, last known state."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import GS1Data
from medtrace.protocol.verdicts import UNCHECKED, Signal, signal_of_rule, signal_of_verdict
from medtrace.scanners.last_known import LastKnown, UnitStatus
from medtrace.scanners.session import Mode, Task
from medtrace.scanners.station import Station
from medtrace.scanners.wedge import normalise, parse_wedge

GTIN = "09521234000112"
UNIT = GS1Data(gtin=GTIN, serial="K7Q2M9XW4H3P", lot="L2611", expiry=dt.date(2027, 6, 30))
ELEMENTS = f"01{GTIN}17270630" + "10L2611\x1d21K7Q2M9XW4H3P"
STATION = Station("counter-1", "9521234000006", Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("typed", "substitutes"),
    [
        (f"]d2{ELEMENTS}\r\n", ()),
        (f"]Q3{ELEMENTS}\n", ()),
        (f"]C1{ELEMENTS}\n", ()),
        (f"]e0{ELEMENTS}\n", ()),
        (f"{ELEMENTS}\n", ()),
        (f"  ]d2{ELEMENTS.replace(chr(29), '<GS>')}  \n", ("<GS>",)),
        (f"{ELEMENTS.replace(chr(29), '^')}\n", ("^",)),
        ("(01)09521234000112(17)270630(10)L2611(21)K7Q2M9XW4H3P\n", ()),
        ("https://id.example.org/01/09521234000112/10/L2611/21/K7Q2M9XW4H3P?17=270630\n", ()),
    ],
)
def test_every_form_a_wedge_scanner_types_reads_as_the_same_unit(
    typed: str, substitutes: tuple[str, ...]
) -> None:
    code = parse_wedge(typed, substitutes)
    assert isinstance(code, GS1Data)
    assert (code.gtin, code.serial, code.lot, code.expiry) == (
        UNIT.gtin,
        UNIT.serial,
        UNIT.lot,
        UNIT.expiry,
    )


def test_a_substitute_is_only_replaced_when_the_station_says_its_scanner_sends_it() -> None:
    assert normalise("10AB<GS>21X") == "10AB<GS>21X"
    assert normalise("10AB<GS>21X", ["<GS>"]) == "10AB\x1d21X"
    unconfigured = parse_wedge(f"01{GTIN}10AB<GS>21X")  # '<' and '>' are legal in a lot
    assert isinstance(unconfigured, GS1Data)
    assert (unconfigured.lot, unconfigured.serial) == ("AB<GS>21X", None)
    configured = parse_wedge(f"01{GTIN}10AB<GS>21X", ["<GS>"])
    assert isinstance(configured, GS1Data)
    assert (configured.lot, configured.serial) == ("AB", "X")


def test_a_bad_check_digit_is_refused_with_its_rule() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_wedge("]d20109521234000113" + "21X")
    assert refused.value.rule == "gs1.bad_check_digit"


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [
        (Mode.SHIP, {}),
        (Mode.RETURN, {}),
        (Mode.PACK, {}),
        (Mode.RECEIVE, {"to": "9525678000004"}),
        (Mode.RECEIVE, {"at": "9525678000004"}),
        (Mode.DISPENSE, {"into": "095212340000000013"}),
    ],
)
def test_a_task_refuses_arguments_that_do_not_fit_its_mode(
    mode: Mode, kwargs: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="--"):
        Task(mode, **kwargs)


def test_each_task_signs_the_event_the_capture_api_expects() -> None:
    unit = {"gtin": GTIN, "serial": "S1"}
    pack = Task(Mode.PACK, into="095212340000000013").sign(STATION, unit)["event"]
    assert (pack["type"], pack["sscc"], pack["children"]) == (
        "pack",
        "095212340000000013",
        [unit],
    )
    ship = Task(Mode.SHIP, to="9525678000004").sign(STATION, unit)["event"]
    assert (ship["type"], ship["destination_gln"], ship["gtin"]) == ("ship", "9525678000004", GTIN)
    store = Task(Mode.STORE).sign(STATION, {"sscc": "095212340000000013"})["event"]
    assert store["type"] == "store" and "location_gln" not in store and "gtin" not in store


def test_verdicts_and_refusal_rules_become_the_words_a_station_shows() -> None:
    assert [
        signal_of_verdict(v)
        for v in ("genuine", "expired", "recalled", "quarantined", "suspect", "unknown")
    ] == [
        Signal.OK,
        Signal.EXPIRED,
        Signal.RECALLED,
        Signal.QUARANTINED,
        Signal.SUSPECT,
        Signal.UNKNOWN,
    ]
    assert signal_of_rule("custody.not_shipped_to_you") is Signal.NOT_FOR_THIS_PLACE
    assert signal_of_rule("custody.not_holder") is Signal.NOT_FOR_THIS_PLACE
    assert signal_of_rule("custody.final_state") is Signal.REFUSED


def _status(verdict: str, expiry: dt.date) -> UnitStatus:
    return UnitStatus(
        verdict=verdict,
        reasons=[],
        state="received",
        holder_gln="9521234000006",
        expiry=expiry,
        checked_at=dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.UTC),
        live=True,
        gtin=GTIN,
    )


def test_the_last_known_state_survives_reopening_and_is_marked_not_live(tmp_path: Path) -> None:
    first = LastKnown(tmp_path / "outbox.db")
    first.remember("/01/x/21/y", _status("quarantined", dt.date(2027, 1, 31)))
    first.close()

    known = LastKnown(tmp_path / "outbox.db").lookup("/01/x/21/y")

    assert known == replace(_status("quarantined", dt.date(2027, 1, 31)), live=False)
    assert LastKnown(tmp_path / "outbox.db").lookup("/01/x/21/other") is None


def test_a_last_known_genuine_unit_reads_as_expired_once_its_date_has_passed() -> None:
    status = _status("genuine", dt.date(2026, 11, 30))
    assert status.as_of(dt.date(2026, 11, 30)).verdict == "genuine"
    assert status.as_of(dt.date(2026, 12, 1)).verdict == "expired"
    unseen = _status(UNCHECKED, dt.date(2026, 11, 30))
    assert unseen.as_of(dt.date(2026, 12, 1)).verdict == "expired"
    assert _status("recalled", dt.date(2026, 11, 30)).as_of(dt.date(2027, 1, 1)).verdict == (
        "recalled"
    )
