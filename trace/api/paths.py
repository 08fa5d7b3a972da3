"""Path parameters that may hold ``/`` and ``%``: a GS1 serial or lot, routed by its raw segment.

GS1's character set 82 (AI 10 lot, AI 21 serial) includes ``/`` and ``%``, so GS1 Digital
Link (URI syntax 1.x, §"percent-encoding") writes them as ``%2F`` and ``%25`` inside one path
segment: ``/01/04012345123456/21/S%2F1``. An ASGI server decodes the whole path before the
application routes it (``scope["path"]``), turning that segment into two; only
``scope["raw_path"]`` keeps the encoding. Two pieces, together, route on the raw segments:

* :class:`RawPathSegments`, a middleware, rewrites ``scope["path"]`` from ``raw_path`` so that
  each segment is decoded except for ``%`` and ``/``, which stay ``%25`` and ``%2F``: segment
  boundaries are the client's, and every other character reads as before.
* :class:`Segment`, installed by :func:`install_segment_convertor` as Starlette's ``str``
  convertor (the one every ``{name}`` parameter uses), decodes those two escapes in the value
  a route receives, and encodes a value when a URL is built (``url_path_for``).

So every route with a ``{name}`` parameter, present and future (``/00/{sscc}``), receives the
exact value the client encoded; a ``{name:path}`` parameter (:class:`SegmentPath`) receives the
rest of the path decoded whole, as before.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote, unquote

from starlette import convertors
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "RawPathSegments",
    "Segment",
    "SegmentPath",
    "escape_segment",
    "install_segment_convertor",
]


def escape_segment(value: str) -> str:
    """A decoded segment as routing sees it: ``%`` and ``/`` escaped, nothing else."""
    return value.replace("%", "%25").replace("/", "%2F")


def _unescape(routed: str) -> str:
    """The inverse of :func:`escape_segment` (``%2F`` first: ``%252F`` is a literal ``%2F``)."""
    return routed.replace("%2F", "/").replace("%25", "%")


class Segment(convertors.Convertor[str]):
    """One path segment: the route receives it with ``%2F`` and ``%25`` decoded."""

    regex: ClassVar[str] = "[^/]+"

    def convert(self, value: str) -> str:
        return _unescape(value)

    def to_string(self, value: str) -> str:
        if not value:
            raise ValueError("a path segment must not be empty")
        return quote(value, safe="")


class SegmentPath(convertors.Convertor[str]):
    """The rest of the path (``{name:path}``), decoded whole as before: an encoded ``/``
    (an EPCIS event id ``ni:%2F%2F%2Fsha-256;…``) is a ``/`` like any other."""

    regex: ClassVar[str] = ".*"

    def convert(self, value: str) -> str:
        return _unescape(value)

    def to_string(self, value: str) -> str:
        return quote(value, safe="/")


def install_segment_convertor() -> None:
    """Make :class:`Segment` the convertor of every ``{name}`` parameter, and
    :class:`SegmentPath` that of every ``{name:path}``.

    Starlette reads its convertor table when a route is declared, so this runs when
    ``medtrace.api`` is first imported, before any router module declares a route.
    """
    convertors.register_url_convertor("str", Segment())
    convertors.register_url_convertor("path", SegmentPath())


class RawPathSegments:
    """Route on the client's own segments: rebuild ``scope["path"]`` from ``raw_path``.

    Only when the two agree once fully decoded (the ASGI server gave both, without a root
    path in one of them); otherwise the scope is left as it came.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = _segment_path(scope)
            if path is not None:
                scope = {**scope, "path": path}
        await self._app(scope, receive, send)


def _segment_path(scope: Scope) -> str | None:
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or b"%" not in raw:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if unquote(text) != scope["path"]:
        return None
    return "/".join(escape_segment(unquote(segment)) for segment in text.split("/"))
