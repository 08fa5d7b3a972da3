"""The GS1 Digital Link resolver: ``/01/{gtin}[/10/{lot}]/21/{serial}[?17=YYMMDD]``,
``/00/{sscc}`` for cases and pallets, and ``/cn/{code}`` for packs keyed by China's drug
traceability code.

A phone's camera opens the URI in a QR code; this service is its own resolver, so the path
renders the verify page, or the same answer as JSON for ``Accept: application/json``. A unit
never seen is a clear ``unknown`` (404), never a server error.

The page states the verdict without JavaScript; ``static/verify.js`` then re-checks the whole
path in the browser (WebCrypto) against the log key printed on the page. The page is served
with a Content-Security-Policy that allows only this origin's own script, so nothing else can
run on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Cookie, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from sqlmodel import Session

from medtrace.api.deps import SessionDep, SettingsDep, SignerDep, TemperaturePolicyDep
from medtrace.config import Settings
from medtrace.contracts.suspect import VerifyWatch
from medtrace.errors import InvalidInput
from medtrace.ledger import NoteSigner
from medtrace.models import Verdict
from medtrace.protocol.identifiers import check_x20, parse_expiry, parse_gtin
from medtrace.schemas.capture import parse_sscc
from medtrace.schemas.containers import ContainerVerifyPublic
from medtrace.schemas.verify import VerifyPublic
from medtrace.services.cn_codes import verify_cn_code
from medtrace.services.containers import verify_container
from medtrace.services.suspects import place_hash, verify_watched
from medtrace.services.temperature import TemperaturePolicy
from medtrace.services.verifications import VerificationCounter
from medtrace.services.verify import verify_unit
from medtrace.web import i18n
from medtrace.web.chart import temperature_chart

router = APIRouter(tags=["resolver"])

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

#: A shared cache (a CDN, nginx) may keep a verify answer a minute, so a spike of patients
#: scanning after a recall made the news is absorbed in front of the API and a recall reaches
#: every phone within a minute; a browser asks again each time (``max-age=0``), so the person
#: holding the pack, or the regulator who has just recalled its lot, never sees an old
#: verdict from their own cache. An answer that sets the language cookie is for one browser.
VERIFY_CACHE_CONTROL = "public, max-age=0, s-maxage=60"
PERSONAL_CACHE_CONTROL = "private, no-cache"

ExpiryQuery = Annotated[str | None, Query(alias="17", description="Expiry, YYMMDD")]
LangQuery = Annotated[str | None, Query(description="Page language: en or zh-Hans")]
LangCookie = Annotated[str | None, Cookie(alias="lang")]


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    lang: str | None,
    lang_cookie: str | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a portal page in the request's language, with the security headers.

    The language switch (``?lang=``) is remembered in a cookie so the next page keeps it.
    """
    language = i18n.pick(lang, lang_cookie, request.headers.get("accept-language", ""))
    switch = {  # relative links: a link never takes its host from the request's Host header
        other.code: "?" + request.url.include_query_params(lang=other.code).query
        for other in i18n.LANGUAGES
    }
    html = (
        i18n.environment(language)
        .get_template(template)
        .render({**context, "language": language, "switch": switch})
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Language"] = language.tag
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Vary"] = "Accept, Accept-Language, Cookie"
    if lang is not None and language.code.lower() == lang.lower():
        response.set_cookie(
            "lang",
            language.code,
            max_age=365 * 24 * 3600,
            samesite="lax",
            httponly=True,
            secure=request.url.scheme == "https",
        )
    return response


@dataclass(frozen=True)
class VerifyAsk:
    """One public verification, all but the code naming the pack: the request, what the
    answer is built from, and the language the page is asked in."""

    request: Request
    session: Session
    settings: Settings
    signer: NoteSigner
    temperature: TemperaturePolicy
    lang: str | None
    lang_cookie: str | None


def _verify_ask(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    temperature: TemperaturePolicyDep,
    lang: LangQuery = None,
    lang_cookie: LangCookie = None,
) -> VerifyAsk:
    return VerifyAsk(request, session, settings, signer, temperature, lang, lang_cookie)


VerifyAskDep = Annotated[VerifyAsk, Depends(_verify_ask)]


def _resolve(ask: VerifyAsk, ident: tuple[str, str, str | None, str | None]) -> Response:
    gtin, serial, lot, expiry = ident

    def verify(now: dt.datetime) -> VerifyPublic:
        return verify_unit(
            session=ask.session,
            gtin=parse_gtin(gtin),
            serial=check_x20(serial, field="serial"),
            lot=None if lot is None else check_x20(lot, field="lot"),
            expiry=None if expiry is None else parse_expiry(expiry),
            today=now.date(),
            base_url=ask.settings.public_url,
            temperature=ask.temperature,
        )

    return _verify_page(ask, _watched(ask, verify), _unit_html({"gtin": gtin, "serial": serial}))


def _watched(
    ask: VerifyAsk, verify: Callable[[dt.datetime], VerifyPublic]
) -> Callable[[], VerifyPublic]:
    """``verify`` as a public verification: one of a dispensed unit is counted, by a salted
    hash of the asker's network, for the ``suspect.verified_after_dispense`` rule."""

    counter: VerificationCounter = ask.request.app.state.verifications
    web = ask.settings.web
    client = ask.request.client

    def watched() -> VerifyPublic:
        now = dt.datetime.now(dt.UTC)
        return verify_watched(
            session=ask.session,
            verify=lambda: verify(now),
            place=place_hash(client.host if client else "", web.place_salt.encode()),
            watch=VerifyWatch(
                max_requests=web.suspect_verify_requests,
                min_places=web.suspect_verify_places,
                window=dt.timedelta(seconds=web.suspect_verify_window),
            ),
            counter=counter,
            now=now,
        )

    return watched


#: A verify answer: a unit's, or a case's or pallet's.
Answer = TypeVar("Answer", VerifyPublic, ContainerVerifyPublic)
#: How an answer is shown as a page: the request, the answer, its HTTP status.
Page = Callable[[VerifyAsk, Answer, int], Response]


def _verify_page(ask: VerifyAsk, verify: Callable[[], Answer], page: Page[Answer]) -> Response:
    """The answer of ``verify`` as JSON (``Accept: application/json``) or as its page;
    ``unknown`` is a 404, malformed input a 422 naming its rule."""
    request = ask.request
    try:
        answer = verify()
    except InvalidInput as exc:
        if _wants_json(request):
            raise
        return render(
            request,
            "error.html",
            {"rule": exc.rule, "message": exc.message},
            lang=ask.lang,
            lang_cookie=ask.lang_cookie,
            status_code=422,
        )
    status = 404 if answer.verdict is Verdict.UNKNOWN else 200
    if _wants_json(request):
        response: Response = JSONResponse(answer.model_dump(mode="json"), status_code=status)
        response.headers["Vary"] = "Accept"
    else:
        response = page(ask, answer, status)
    personal = "set-cookie" in response.headers
    response.headers["Cache-Control"] = PERSONAL_CACHE_CONTROL if personal else VERIFY_CACHE_CONTROL
    if status == 200 and not personal:
        return _revalidated(request, response)
    return response


def _revalidated(request: Request, response: Response) -> Response:
    """The answer with a strong ``ETag`` made from its bytes, or a bodiless 304 when the
    client or a cache in front already holds those bytes (``If-None-Match``).

    The bytes are everything the reader sees (the unit's events and flags, the checkpoint it
    is proven against, the language, HTML or JSON), so the tag changes exactly when one of
    them does, and a CDN revalidating after its ``s-maxage`` costs the reader no body. The
    request still reaches the service, so every verification is still counted.
    """
    tag = '"' + hashlib.sha256(bytes(response.body)).hexdigest()[:32] + '"'
    held = {
        t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")
    }
    if tag in held or "*" in held:  # RFC 9110 §13.1.2: If-None-Match compares weakly
        kept = {k: v for k, v in response.headers.items() if k in ("cache-control", "vary")}
        return Response(status_code=304, headers={**kept, "ETag": tag})
    response.headers["ETag"] = tag
    return response


def _unit_html(page: dict[str, str]) -> Page[VerifyPublic]:
    """The verify page of a unit's answer; ``page`` names the unit asked for."""

    def html(ask: VerifyAsk, answer: VerifyPublic, status: int) -> Response:
        proof = {"unit", "checkpoint", "events", "lot_records", "quarantine", "readings"}
        context = {"chart": temperature_chart(answer.temperature), **page}
        return _proof_html(ask, "verify.html", answer, proof, context, status)

    return html


def _container_html(sscc: str) -> Page[ContainerVerifyPublic]:
    """The page of a case or pallet's answer; ``sscc`` is the SSCC asked for."""

    def html(ask: VerifyAsk, answer: ContainerVerifyPublic, status: int) -> Response:
        proof = {"container", "checkpoint", "events"}
        return _proof_html(ask, "container.html", answer, proof, {"sscc": sscc}, status)

    return html


def _proof_html(
    ask: VerifyAsk,
    template: str,
    answer: VerifyPublic | ContainerVerifyPublic,
    proof: set[str],
    context: dict[str, Any],
    status: int,
) -> Response:
    """A verify page: the answer, the part of it ``static/verify.js`` checks (``proof``),
    and the keys it checks the proofs against."""
    return render(
        ask.request,
        template,
        {
            "answer": answer,
            "proof_data": answer.model_dump(mode="json", include=proof),
            **context,
            "log_vkey": ask.signer.vkey,
            "witness_vkeys": ask.settings.ledger.witness_keys,
        },
        lang=ask.lang,
        lang_cookie=ask.lang_cookie,
        status_code=status,
    )


@router.get("/01/{gtin}/21/{serial}", response_class=HTMLResponse)
def resolve_unit(ask: VerifyAskDep, gtin: str, serial: str, expiry: ExpiryQuery = None) -> Response:
    """Verify a unit by GTIN and serial (HTML, or JSON for ``Accept: application/json``)."""
    return _resolve(ask, (gtin, serial, None, expiry))


@router.get("/01/{gtin}/10/{lot}/21/{serial}", response_class=HTMLResponse)
def resolve_unit_with_lot(
    ask: VerifyAskDep, gtin: str, lot: str, serial: str, expiry: ExpiryQuery = None
) -> Response:
    """Verify a unit by GTIN, lot and serial (HTML, or JSON for ``Accept: application/json``)."""
    return _resolve(ask, (gtin, serial, lot, expiry))


@router.get("/00/{sscc}", response_class=HTMLResponse)
def resolve_container(ask: VerifyAskDep, sscc: str) -> Response:
    """Verify a case or pallet by SSCC (HTML, or JSON for ``Accept: application/json``): its
    contents at any depth, summarised, its path and the proofs; a bad check digit is a 422
    naming ``gs1.bad_check_digit``, an SSCC never used a 404 ``unknown``."""

    def verify() -> ContainerVerifyPublic:
        return verify_container(
            session=ask.session,
            sscc=parse_sscc(sscc),
            today=dt.datetime.now(dt.UTC).date(),
            base_url=ask.settings.public_url,
        )

    return _verify_page(ask, verify, _container_html(sscc))


@router.get("/cn/{code}", response_class=HTMLResponse)
def resolve_cn_code(ask: VerifyAskDep, code: str) -> Response:
    """Verify a pack by its China drug traceability code (HTML, or JSON for ``Accept:
    application/json``); its ``unit.gtin`` and ``unit.serial`` are what a station signs."""

    def verify(now: dt.datetime) -> VerifyPublic:
        return verify_cn_code(
            session=ask.session,
            code=code,
            today=now.date(),
            base_url=ask.settings.public_url,
            temperature=ask.temperature,
        )

    return _verify_page(ask, _watched(ask, verify), _unit_html({}))


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    """The portal's own script and style sheet (no CDN: everything comes from this origin).

    Only the files shipped in ``static/`` are served; the name is looked up, never joined
    into a path, so nothing outside that folder can be reached.
    """
    if name not in i18n.STATIC_VERSIONS:
        raise HTTPException(status_code=404, detail="no such file")
    response = FileResponse(i18n.STATIC_DIR / name)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
