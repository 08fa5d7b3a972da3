"""Routing on the client's own path segments (``medtrace.api.paths``): a ``%2F`` or ``%25``
stays inside its segment, and every ``{name}`` parameter of the app receives it decoded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from medtrace.api.main import create_app
from medtrace.api.paths import RawPathSegments, Segment, SegmentPath
from medtrace.config import Settings


def _routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    """Every route of the app, inside each router it includes."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)


def test_every_named_parameter_of_the_app_decodes_its_segment(tmp_path: Path) -> None:
    """The convertor is installed before any router declares a route: a route declared
    before it would split a serial holding '/' and 404."""
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    named = {
        (route.path, name): convertor
        for route in _routes(create_app(settings).routes)
        for name, convertor in route.param_convertors.items()
    }
    assert isinstance(named["/01/{gtin}/10/{lot}/21/{serial}", "serial"], Segment)
    assert isinstance(named["/portal/lots/{gtin}/{lot}/reach", "lot"], Segment)
    assert isinstance(named["/epcis/events/{event_id:path}", "event_id"], SegmentPath)
    assert all(isinstance(c, Segment | SegmentPath) for c in named.values()), named


def _path_seen(raw_path: bytes) -> str:
    """The path the app behind the middleware routes on, for a request of ``raw_path``."""
    seen: dict[str, str] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["path"] = scope["path"]

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    scope = {"type": "http", "path": unquote(raw_path.decode()), "raw_path": raw_path}
    asyncio.run(RawPathSegments(app)(scope, receive, send))
    return seen["path"]


@pytest.mark.parametrize(
    ("raw", "routed"),
    [
        (b"/01/04012345123456/21/S%2F1", "/01/04012345123456/21/S%2F1"),
        (b"/01/1/10/LOT%2F9/21/P%25Q", "/01/1/10/LOT%2F9/21/P%25Q"),
        (b"/01/1/21/%252F", "/01/1/21/%252F"),  # a serial that is literally '%2F'
        (b"/01/1/21/A%2bB%20", "/01/1/21/A+B "),  # everything else decoded, as before
        (b"/portal", "/portal"),
    ],
)
def test_only_percent_and_slash_stay_escaped(raw: bytes, routed: str) -> None:
    assert _path_seen(raw) == routed


@given(value=st.text(min_size=1, max_size=30))
def test_a_segment_reaches_the_route_as_the_client_encoded_it(value: str) -> None:
    routed = _path_seen(b"/x/" + quote(value, safe="").encode())
    segments = routed.split("/")
    assert len(segments) == 3
    assert Segment().convert(segments[2]) == value
