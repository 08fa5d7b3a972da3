"""The temperature chart of the verify page, drawn on the server as inline SVG.

Drawn on the server so that it shows without JavaScript and costs no extra request. The
verify answer's ``temperature`` section (when the unit has readings) is read as::

    {"band": {"min_c": 2.0, "max_c": 8.0},
     "series": [{"time": "2026-11-22T10:00:00Z", "celsius": 5.1}, ...],
     "gaps": [{"start": "...", "end": "..." or None while it lasts}, ...]}

Readings outside the band are excursions (drawn red); gaps are periods without readings
(shaded), because a missing reading is not a good one.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = ["Chart", "temperature_chart"]

WIDTH, HEIGHT = 320.0, 160.0
LEFT, RIGHT, TOP, BOTTOM = 34.0, 6.0, 8.0, 22.0


@dataclass(frozen=True)
class Point:
    """A reading placed on the chart."""

    x: float
    y: float
    celsius: float
    at: dt.datetime
    """When it was read, in UTC."""
    excursion: bool
    stamp: str
    """Its time as the section gives it (the page checks it against the signed reading)."""
    leaf_index: int | None
    """The reading's ledger leaf, where the section names it."""

    @property
    def time(self) -> str:
        """When it was read, for people. Formatted only when shown (the first and last
        readings, excursions): ``strftime`` on every reading was 40 % of drawing a chart."""
        return self.at.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw the SVG, in SVG user units."""

    width: float
    height: float
    points: tuple[Point, ...]
    band_top: float
    band_bottom: float
    band_min: float
    band_max: float
    gaps: tuple[tuple[float, float], ...]
    """(x, width) of the stretches without readings."""
    ticks: tuple[tuple[float, float], ...]
    """(y, °C) of the horizontal grid lines."""
    first: str
    last: str
    excursions: int

    @property
    def polylines(self) -> list[str]:
        """The readings as SVG ``points`` attributes, one per run of readings: the line is
        broken across a gap, so that no trend is drawn where nothing was measured."""
        runs: list[list[Point]] = [[self.points[0]]]
        for before, after in itertools.pairwise(self.points):
            if any(before.x <= x and x + w <= after.x + 1e-6 for x, w in self.gaps):
                runs.append([])
            runs[-1].append(after)
        return [" ".join(f"{p.x:.1f},{p.y:.1f}" for p in run) for run in runs]


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def temperature_chart(section: BaseModel | Mapping[str, Any] | None) -> Chart | None:
    """Scale a ``temperature`` section to a chart, or None when there is no reading.

    Raises ``KeyError``/``ValueError`` on a section that does not have the documented shape
    (a bug on the server side, not bad user input).
    """
    if section is None:
        return None
    data = section.model_dump(mode="json") if isinstance(section, BaseModel) else section
    series = sorted(
        (
            (_time(r["time"]), float(r["celsius"]), r["time"], r.get("leaf_index"))
            for r in data["series"]
        ),
        key=lambda reading: reading[:2],
    )
    if not series:
        return None
    low, high = float(data["band"]["min_c"]), float(data["band"]["max_c"])
    values = [c for _, c, _, _ in series]
    floor, ceiling = min([*values, low]) - 1.0, max([*values, high]) + 1.0
    start, end = series[0][0], series[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(when: dt.datetime) -> float:
        return LEFT + plot_w * (when - start).total_seconds() / span

    def y_of(celsius: float) -> float:
        return TOP + plot_h * (ceiling - celsius) / (ceiling - floor)

    points = tuple(
        Point(x_of(t), y_of(c), c, t, not low <= c <= high, stamp, leaf)
        for t, c, stamp, leaf in series
    )
    gaps = tuple(
        (x_of(max(_time(g["start"]), start)), x_of(min(_time(g["end"]), end) if g["end"] else end))
        for g in data.get("gaps") or ()
    )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        points=points,
        band_top=y_of(high),
        band_bottom=y_of(low),
        band_min=low,
        band_max=high,
        gaps=tuple((a, max(b - a, 1.0)) for a, b in gaps),
        ticks=tuple((y_of(c), c) for c in (low, high)),
        first=points[0].time,
        last=points[-1].time,
        excursions=sum(p.excursion for p in points),
    )
