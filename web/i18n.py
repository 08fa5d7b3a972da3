"""The portal's templates and languages: English and Simplified Chinese, chosen per request.

Strings are marked in the templates with ``_()`` / ``{% trans %}`` (Jinja's i18n extension) and
translated through GNU gettext catalogues. The ``.po`` sources ship inside the package and are
compiled with Babel when this module is imported, so a plain ``pip install`` (or an editable
checkout) never lacks a compiled ``.mo``: there is no build step to forget.

A request's language comes, first match wins, from the ``lang`` query parameter (the switch on
every page), the ``lang`` cookie the switch sets, then ``Accept-Language`` (RFC 9110 §12.5.4,
quality values honoured), then English.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

from medtrace.protocol.identifiers import digital_link_path

__all__ = ["DEFAULT", "LANGUAGES", "Language", "environment", "negotiate", "pick", "static_url"]

_HERE = Path(__file__).parent
LOCALES_DIR = _HERE / "locales"
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"
STATIC_VERSIONS = {
    path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    for path in STATIC_DIR.iterdir()
    if path.is_file()
}
"""Content hashes of the static files: their URLs change with their content, so they can be
cached for a long time on slow connections."""


def static_url(name: str) -> str:
    """The versioned URL of a static file."""
    return f"/static/{name}?v={STATIC_VERSIONS[name]}"


def _when(rfc3339: str) -> str:
    """A signed event time for people: minutes, in UTC."""
    return dt.datetime.fromisoformat(rfc3339).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Language:
    """A language the portal speaks: its switch code, BCP 47 tag and gettext catalogue."""

    code: str
    """The value of ``?lang=`` and of the cookie."""
    tag: str
    """The BCP 47 tag for ``<html lang>`` and ``Content-Language``."""
    catalogue: str | None
    """The gettext locale folder under ``locales/``; None for the source language."""
    label: str
    """The language's own name, shown in the switch."""


DEFAULT = Language("en", "en", None, "English")
LANGUAGES = (DEFAULT, Language("zh-Hans", "zh-Hans", "zh_Hans", "简体中文"))
_BY_CODE = {lang.code.lower(): lang for lang in LANGUAGES}


def _translations(language: Language) -> NullTranslations:
    """Compile ``language``'s ``.po`` catalogue in memory (Babel) and load it."""
    if language.catalogue is None:
        return NullTranslations()
    po = LOCALES_DIR / language.catalogue / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=language.catalogue)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def _gettext(translate: Callable[[str], str]) -> Callable[..., str]:
    """Jinja's newstyle ``gettext`` (what ``_()`` calls in the templates), without its cost.

    Jinja's own makes three ``Context.call`` (the ``_`` alias, its wrapper, the catalogue), a
    ``Markup`` and a ``%`` on every call: over a quarter of the verify page's render when it
    made ~100 of them. Without variables the result depends only on the message and on
    autoescaping, so it is computed once and kept; with variables it is formatted on each call,
    escaping their values as Jinja does. The cache is an LRU (thread-safe) bounded well above
    the templates' ~200 messages, which are literals: nothing a request sends can grow it.
    """

    def translated(message: str, autoescape: bool) -> str:
        text = translate(message)
        return Markup(text) if autoescape else text

    @functools.lru_cache(maxsize=1024)
    def constant(message: str, autoescape: bool) -> str:
        return translated(message, autoescape) % {}

    @pass_eval_context
    def gettext(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
        if variables:
            return translated(message, eval_ctx.autoescape) % variables
        return constant(message, eval_ctx.autoescape)

    return gettext


def _environment(language: Language) -> Environment:
    """One Jinja environment per language, so concurrent requests never share a catalogue.

    The i18n extension stays installed, newstyle, for what it compiles and for ``ngettext``;
    ``_`` and ``gettext`` are then replaced by the same calls made cheap (``_gettext``).
    ``_`` is bound to it directly rather than through Jinja's alias, which looks ``gettext`` up
    in the context on each call: no page's context defines ``gettext``.
    """
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    translations = _translations(language)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = env.globals["gettext"] = _gettext(translations.gettext)
    env.filters["when"] = _when
    # links carry serials and lots of GS1's set 82: each one is one encoded path segment
    env.filters["segment"] = functools.partial(quote, safe="")
    env.globals["digital_link"] = digital_link_path
    env.globals["static_url"] = static_url
    env.globals["languages"] = LANGUAGES
    return env


_ENVIRONMENTS = {lang.code: _environment(lang) for lang in LANGUAGES}


def environment(language: Language) -> Environment:
    """The template environment that renders in ``language``."""
    return _ENVIRONMENTS[language.code]


def negotiate(accept_language: str) -> Language:
    """The best of our languages for an ``Accept-Language`` header, else English.

    Only the primary subtag decides: any ``zh`` gets Simplified Chinese (the only Chinese
    catalogue), any ``en`` English. A weight of 0 refuses a language; malformed items are
    ignored rather than failing the page.
    """
    ranked: list[tuple[float, int, Language]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        match = next((lang for lang in LANGUAGES if lang.tag.split("-")[0] == primary), None)
        if match is not None and quality > 0:
            ranked.append((-quality, position, match))
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else DEFAULT


def pick(query: str | None, cookie: str | None, accept_language: str) -> Language:
    """The request's language: the switch (query), then its cookie, then the header."""
    for choice in (query, cookie):
        if choice and choice.lower() in _BY_CODE:
            return _BY_CODE[choice.lower()]
    return negotiate(accept_language)
