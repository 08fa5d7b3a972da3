"""Whatever a scanner types, the station answers with a verdict or a refusal naming its rule,
never a traceback; and every serial and lot of GS1's set 82 is scanned through the real station
(``medtrace scan``) against a live server."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medtrace.demo import GTIN
from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import CSET82, GS1Data
from medtrace.scanners.wedge import COMMON_FNC1_SUBSTITUTES, parse_wedge
from support.chain import EXPIRY, Chain
from support.station import ScanStation, scan_station

_fresh = itertools.count()
X20 = st.text(st.sampled_from(sorted(CSET82)), min_size=1, max_size=20)
#: Anything a keyboard wedge can deliver on one line: any character but the line ends.
WEDGE = st.text(st.characters(exclude_characters="\r\n"), max_size=60) | st.sampled_from(
    ["", "A" * 100_000, "\x00", "]d2", "[/]", "[bold]x", "]Q3010061414100001221Ab-7/9<GS>10é"]
)


@settings(max_examples=400, deadline=None)
@given(line=WEDGE)
def test_any_wedge_line_is_a_code_or_a_refusal_naming_its_rule(line: str) -> None:
    try:
        parse_wedge(line, COMMON_FNC1_SUBSTITUTES)
    except InvalidInput as exc:
        assert exc.rule.split(".")[0] in ("gs1", "hibc", "cn")
        assert "pattern" not in exc.message, "a refusal names the field, not a regex"


@pytest.fixture
def hub_station(chain: Chain, tmp_path: Path) -> ScanStation:
    return scan_station(chain.hub, chain.server.url, tmp_path, f"dock-{next(_fresh)}")


def _opening_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line and not line.startswith("    ")]


@pytest.mark.slow
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=st.lists(st.tuples(X20, X20), min_size=6, max_size=6, unique_by=lambda p: p[0]))
def test_units_of_any_set_82_serial_and_lot_are_received_at_a_station(
    chain: Chain, hub_station: ScanStation, pairs: list[tuple[str, str]]
) -> None:
    maker = chain.maker
    serials = [f"{serial[:17]}{next(_fresh):03d}" for serial, _ in pairs]  # new each example
    station = maker.station
    maker.api.capture(
        [
            station.commission(GTIN, s, lot=lot, expiry=EXPIRY)
            for s, (_, lot) in zip(serials, pairs, strict=True)
        ]
    )
    maker.api.capture([station.ship(GTIN, s, to=chain.hub.gln) for s in serials])
    codes = [
        GS1Data(gtin=GTIN, serial=s, lot=lot, expiry=EXPIRY)
        for s, (_, lot) in zip(serials, pairs, strict=True)
    ]
    typed = [
        f"]d2{code.element_string()}" if n % 2 else code.digital_link_uri("https://id.example.org")
        for n, code in enumerate(codes)
    ]

    done = hub_station.run("--mode", "receive", codes=typed)

    assert done.returncode == 0, done.stdout + done.stderr
    received = [line for line in _opening_lines(done.stdout) if line.startswith(" OK ")]
    assert len(received) == 6 and all("received" in line for line in received), done.stdout


@pytest.mark.slow
@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(WEDGE, min_size=20, max_size=20))
def test_a_station_answers_every_line_a_scanner_types_and_never_shows_a_traceback(
    chain: Chain, hub_station: ScanStation, lines: list[str]
) -> None:
    typed = [
        "]Q3010061414100001221Ab-7/9<GS>10L0T.2<GS>17270500",
        "https://id.example.org/01/09506000134352/10/ABC%2F1/21/X%2BY?17=281231",
        "]d20109506000134352\x1d21Abé",
        "https://x.org/01/09506000134352/21/A[/b]",  # text quoted back, never Rich markup
        *lines,
    ]

    done = hub_station.run("--mode", "verify", "--fnc1", "<GS>", codes=typed)

    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    answered = _opening_lines(done.stdout)[1:-1]  # between the greeting and the closing line
    assert len(answered) == sum(1 for line in typed if line.strip()), done.stdout
    assert answered[0].startswith(" UNKNOWN ") and "Ab-7/9" in answered[0]
    assert answered[1].startswith(" UNKNOWN ") and "X+Y" in answered[1]
    assert " UNREADABLE " in answered[2]
    assert "the serial (AI 21) has 'é', outside GS1's character set 82" in done.stdout
    assert " UNREADABLE " in answered[3] and "A[/b]" in answered[3]
