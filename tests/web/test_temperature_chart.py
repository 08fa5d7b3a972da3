"""The verify page's temperature chart (server-side SVG) and its absence."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from medtrace.models import UnitState, Verdict
from medtrace.schemas.verify import UnitPublic, VerifyPublic
from medtrace.web import i18n
from medtrace.web.chart import temperature_chart

SECTION: dict[str, Any] = {
    "band": {"min_c": 2.0, "max_c": 8.0},
    "series": [
        {"time": "2026-11-22T10:00:00Z", "celsius": 5.0},
        {"time": "2026-11-22T11:00:00Z", "celsius": 9.5},
        {"time": "2026-11-22T12:00:00Z", "celsius": 4.0},
        {"time": "2026-11-22T18:00:00Z", "celsius": 1.0},
    ],
    "gaps": [{"start": "2026-11-22T12:00:00Z", "end": "2026-11-22T18:00:00Z"}],
}


def _page(chart_section: dict[str, Any] | None) -> str:
    unit = UnitPublic(
        gtin="09521234000112",
        serial="S1",
        lot="L1",
        expiry=dt.date(2030, 1, 1),
        state=UnitState.RECEIVED,
        holder=None,
        digital_link="http://x/01/09521234000112/21/S1",
    )
    answer = VerifyPublic(
        verdict=Verdict.GENUINE, reasons=[], unit=unit, checkpoint=None, events=[]
    )
    return (
        i18n.environment(i18n.DEFAULT)
        .get_template("verify.html")
        .render(
            answer=answer,
            proof_data={},
            chart=temperature_chart(chart_section),
            gtin=unit.gtin,
            serial=unit.serial,
            log_vkey="k",
            language=i18n.DEFAULT,
            switch={},
        )
    )


def test_readings_are_scaled_inside_the_plot_with_excursions_and_gaps() -> None:
    chart = temperature_chart(SECTION)

    assert chart is not None
    assert chart.excursions == 2
    assert [p.excursion for p in chart.points] == [False, True, False, True]
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs) and xs[0] == 34.0 and xs[-1] == chart.width - 6
    assert all(8.0 <= p.y <= chart.height - 22 for p in chart.points)
    assert chart.band_top < chart.band_bottom
    (gap_x, gap_width), *_ = chart.gaps
    assert gap_x == chart.points[2].x
    assert abs(gap_x + gap_width - chart.points[3].x) < 1e-9
    assert [len(run.split()) for run in chart.polylines] == [3, 1], "no line across the gap"


def test_the_page_draws_the_chart_without_javascript() -> None:
    page = _page(SECTION)

    assert '<svg class="chart"' in page
    assert len(re.findall(r'<circle class="excursion"', page)) == 2
    assert 'class="gap"' in page
    assert "Allowed: 2 to 8 °C." in page
    assert "No temperature data" not in page


def test_without_readings_the_page_says_there_is_no_temperature_data() -> None:
    assert temperature_chart(None) is None
    assert temperature_chart({**SECTION, "series": []}) is None
    page = _page(None)
    assert "No temperature data for this pack." in page
    assert "<svg" not in page
