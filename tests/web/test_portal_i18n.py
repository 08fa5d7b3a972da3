"""Languages: negotiation, complete catalogues, and the pages as a server sends them."""

from __future__ import annotations

import re

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path
from medtrace.web import i18n
from support.chain import LOT, Chain, new_serial

PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")
ZH = i18n.LANGUAGES[1]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("zh-Hans", "zh-Hans"),
        ("en-GB,zh;q=0.5", "en"),
        ("fr-FR, zh-TW;q=0.7, en;q=0.3", "zh-Hans"),
        ("en;q=0.2, zh;q=0.9", "zh-Hans"),
        ("zh;q=0, en;q=0.1", "en"),
        ("fr, de", "en"),
        ("zh;q=abc, en", "en"),
        ("", "en"),
    ],
)
def test_accept_language_picks_the_best_of_our_languages(header: str, code: str) -> None:
    assert i18n.negotiate(header).code == code


def test_the_switch_beats_the_cookie_which_beats_the_header() -> None:
    assert i18n.pick("en", "zh-Hans", "zh-CN").code == "en"
    assert i18n.pick(None, "zh-hans", "en").code == "zh-Hans"
    assert i18n.pick("klingon", None, "zh").code == "zh-Hans"


def _template_messages() -> set[str]:
    found = extract_from_dir(
        str(i18n.TEMPLATES_DIR.parent),
        method_map=[("**/templates/**.html", "jinja2")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def _catalogue(path: str) -> dict[str, str]:
    with (i18n.LOCALES_DIR / path).open("rb") as source:
        messages = read_po(source)
    return {
        m.id: m.string
        for m in messages
        if m.id and isinstance(m.id, str) and isinstance(m.string, str)
    }


def test_every_string_of_every_page_is_translated_with_its_placeholders() -> None:
    in_templates = _template_messages()
    chinese = _catalogue("zh_Hans/LC_MESSAGES/messages.po")

    assert in_templates == set(_catalogue("messages.pot")), "run pybabel extract (web/babel.cfg)"
    assert len(in_templates) > 50
    for message in in_templates:
        assert chinese.get(message), f"no Chinese for {message!r}"
        assert sorted(PLACEHOLDER.findall(chinese[message])) == sorted(
            PLACEHOLDER.findall(message)
        ), message


def test_the_catalogue_is_compiled_when_the_package_is_imported() -> None:
    page = i18n.environment(ZH).get_template("error.html")

    rendered = page.render(
        rule="gs1.gtin_format", message="m", language=ZH, switch={}, static_url=str
    )

    assert "无法识别此码" in rendered
    assert '<html lang="zh-Hans">' in rendered


def test_the_page_follows_accept_language_and_remembers_the_switch(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    url = chain.server.url + digital_link_path(GTIN, serial, lot=LOT)

    chinese = httpx.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    switched = httpx.get(url, params={"lang": "zh-Hans"}, headers={"Accept-Language": "en"})
    remembered = httpx.get(url, cookies={"lang": "zh-Hans"}, headers={"Accept-Language": "en"})
    english = httpx.get(url, headers={"Accept-Language": "en-US"})

    assert chinese.headers["content-language"] == "zh-Hans"
    assert "正品，在有效期内" in chinese.text
    assert "lang=zh-Hans" in (switched.headers.get("set-cookie") or "")
    assert "正品" in switched.text and "正品" in remembered.text
    assert "set-cookie" not in remembered.headers
    assert english.headers["content-language"] == "en"
    assert "Genuine and in date" in english.text


def test_pages_carry_a_strict_content_security_policy_and_own_their_script(
    chain: Chain,
) -> None:
    serial = new_serial()
    chain.commission(serial)
    page = httpx.get(chain.server.url + digital_link_path(GTIN, serial))
    script_path = re.search(r'<script src="([^"]+)"', page.text)
    assert script_path is not None

    script = httpx.get(chain.server.url + script_path.group(1))
    missing = httpx.get(chain.server.url + "/static/..%2Fi18n.py")

    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "http" not in script_path.group(1), "no CDN: the script comes from this service"
    assert script.status_code == 200
    assert "crypto.subtle" in script.text
    assert "immutable" in script.headers["cache-control"]
    assert missing.status_code == 404


def test_a_bad_code_gets_a_translated_error_page(chain: Chain) -> None:
    bad = httpx.get(
        chain.server.url + f"/01/{GTIN[:-1]}9/21/ABC", headers={"Accept-Language": "zh"}
    )

    assert bad.status_code == 422
    assert "无法识别此码" in bad.text
    assert "gs1.bad_check_digit" in bad.text
