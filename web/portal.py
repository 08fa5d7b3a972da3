"""The pages for professionals: log in, then each participant sees only its own data.

* Log-in is with the participant's API token (stored only hashed, checked by the same
  ``registry.authenticate`` as the API). The session cookie is ``HttpOnly``,
  ``SameSite=Strict``, scoped to ``/portal`` and ``Secure`` over HTTPS.
* Every form carries a CSRF token that must equal the ``portal_csrf`` cookie (the double-submit
  pattern of the OWASP CSRF cheat sheet); with ``SameSite=Strict`` session cookies, a forged
  cross-site post has neither.
* A pharmacy, distributor or manufacturer sees its stock (by product, lot and expiry; expiring
  soon highlighted) and can download it as CSV, and has a verify-before-dispense box (type or
  scan a pack's code: it opens that pack's verify page); a regulator investigates a lot: every
  unit, its state, its current holder.

Recalls, alerts and reorder plans are not shown yet: their services do not exist yet.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import secrets
from collections import Counter
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Cookie, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from medtrace.api.deps import EngineDep, SessionDep
from medtrace.errors import InvalidInput, Unauthenticated
from medtrace.identifiers import GS1Data, check_x20, digital_link_path, parse_code, parse_gtin
from medtrace.models import Participant, Role
from medtrace.services import registry
from medtrace.store import participants as participant_store
from medtrace.store import units as unit_store
from medtrace.web.routes import render

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"
EXPIRING_SOON = dt.timedelta(days=90)
"""Stock expiring within this is highlighted (a common pharmacy review horizon)."""

LangQuery = Annotated[str | None, Query()]
LangCookie = Annotated[str | None, Cookie(alias="lang")]
SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]
CsrfCookie = Annotated[str | None, Cookie(alias=CSRF_COOKIE)]


def current_participant(engine: EngineDep, token: SessionCookie = None) -> Participant | None:
    """The participant logged in with this request's session cookie, or None."""
    if not token:
        return None
    with Session(engine) as session:
        try:
            participant = registry.authenticate(session=session, token=token)
        except Unauthenticated:
            return None
        session.expunge(participant)
    return participant


PortalUser = Annotated[Participant | None, Depends(current_participant)]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _with_csrf(request: Request, response: HTMLResponse, token: str) -> HTMLResponse:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/portal",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_token(cookie: str | None) -> str:
    return cookie or secrets.token_urlsafe(32)


async def _form(request: Request, cookie: str | None) -> dict[str, str] | None:
    """The posted form if its CSRF token equals the cookie's, else None."""
    fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    sent = fields.get("csrf", "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return None
    return fields


def _page(
    request: Request,
    template: str,
    context: dict[str, object],
    *,
    csrf: str,
    lang: str | None,
    lang_cookie: str | None,
    status_code: int = 200,
) -> HTMLResponse:
    response = render(
        request,
        template,
        {**context, "csrf": csrf},
        lang=lang,
        lang_cookie=lang_cookie,
        status_code=status_code,
    )
    return _with_csrf(request, response, csrf)


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    csrf_cookie: CsrfCookie = None,
    lang: LangQuery = None,
    lang_cookie: LangCookie = None,
) -> HTMLResponse:
    """The log-in form."""
    csrf = _csrf_token(csrf_cookie)
    return _page(request, "portal_login.html", {}, csrf=csrf, lang=lang, lang_cookie=lang_cookie)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    engine: EngineDep,
    csrf_cookie: CsrfCookie = None,
    lang_cookie: LangCookie = None,
) -> Response:
    """Check the token; on success set the session cookie and go to the participant's page."""
    csrf = _csrf_token(csrf_cookie)
    fields = await _form(request, csrf_cookie)
    if fields is None:
        return _page(
            request,
            "portal_login.html",
            {"error": "csrf"},
            csrf=csrf,
            lang=None,
            lang_cookie=lang_cookie,
            status_code=403,
        )
    token = fields.get("token", "").strip()
    if current_participant(engine, token) is None:
        return _page(
            request,
            "portal_login.html",
            {"error": "token"},
            csrf=csrf,
            lang=None,
            lang_cookie=lang_cookie,
            status_code=401,
        )
    response = RedirectResponse("/portal", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=8 * 3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/portal",
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf_cookie: CsrfCookie = None) -> Response:
    """End the session (a CSRF-checked post, so a link elsewhere cannot log anyone out)."""
    if await _form(request, csrf_cookie) is None:
        return Response("CSRF token missing or wrong", status_code=403)
    response = RedirectResponse("/portal/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response


def _stock_rows(units: list[tuple[str, str, dt.date]], today: dt.date) -> list[dict[str, object]]:
    """Stock by product, lot and expiry, soonest expiry first, with how soon it expires."""
    counts = Counter(units)
    return [
        {
            "gtin": gtin,
            "lot": lot,
            "expiry": expiry,
            "count": count,
            "status": "expired"
            if expiry < today
            else "soon"
            if expiry - today <= EXPIRING_SOON
            else "ok",
        }
        for (gtin, lot, expiry), count in sorted(counts.items(), key=lambda kv: (kv[0][2], kv[0]))
    ]


def _stock_of(session: Session, user: Participant) -> list[dict[str, object]]:
    """The stock kept at the participant's site, grouped for the page and the CSV."""
    today = dt.datetime.now(dt.UTC).date()
    units = unit_store.get_stock(session=session, location_gln=user.gln)
    return _stock_rows([(u.gtin, u.lot, u.expiry) for u in units], today)


@router.get("", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    user: PortalUser,
    csrf_cookie: CsrfCookie = None,
    gtin: Annotated[str | None, Query()] = None,
    lot: Annotated[str | None, Query()] = None,
    lang: LangQuery = None,
    lang_cookie: LangCookie = None,
) -> Response:
    """The participant's page: its stock, or for a regulator the lot investigation."""
    if user is None:
        return RedirectResponse("/portal/login", status_code=303)
    csrf = _csrf_token(csrf_cookie)
    context: dict[str, object] = {"user": user}
    if user.role is Role.REGULATOR:
        context.update(_lot_investigation(session, gtin, lot))
    else:
        context["stock"] = _stock_of(session, user)
    return _page(
        request, "portal_home.html", context, csrf=csrf, lang=lang, lang_cookie=lang_cookie
    )


def _lot_investigation(session: Session, gtin: str | None, lot: str | None) -> dict[str, object]:
    """Every unit of a lot with its state and current holder (regulators only)."""
    if not gtin or not lot:
        return {"query": None}
    try:
        key = (parse_gtin(gtin), check_x20(lot, field="lot"))
    except InvalidInput as exc:
        return {"query": (gtin, lot), "error": exc.message}
    units = unit_store.get_lot_units(session=session, gtin=key[0], lot=key[1])
    holders = {
        gln: participant_store.get_participant_by_gln(session=session, gln=gln)
        for gln in {u.holder_gln for u in units}
    }
    return {"query": key, "units": units, "holders": holders}


@router.get("/stock.csv")
def stock_csv(session: SessionDep, user: PortalUser) -> Response:
    """The participant's stock as CSV (RFC 4180), one row per product, lot and expiry."""
    if user is None or user.role is Role.REGULATOR:
        return Response("log in as a stock-holding participant", status_code=401)
    today = dt.datetime.now(dt.UTC).date()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["gtin", "lot", "expiry", "count", "status"])
    for row in _stock_of(session, user):
        writer.writerow([row["gtin"], row["lot"], row["expiry"], row["count"], row["status"]])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="stock-{user.gln}-{today}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/check", response_class=HTMLResponse)
def check_code(
    request: Request,
    session: SessionDep,
    user: PortalUser,
    code: Annotated[str, Query(max_length=512)] = "",
    csrf_cookie: CsrfCookie = None,
    lang: LangQuery = None,
    lang_cookie: LangCookie = None,
) -> Response:
    """Verify before dispensing: any scanned form of a pack's code opens its verify page.

    ``parse_code`` reads a GS1 Digital Link, a GS1 element string or HIBC; only a code that
    names one serialised unit (GTIN + serial) can be verified.
    """
    if user is None:
        return RedirectResponse("/portal/login", status_code=303)
    try:
        parsed = parse_code(code)
        if not isinstance(parsed, GS1Data) or parsed.gtin is None or parsed.serial is None:
            raise InvalidInput("this code does not name one pack", rule="gs1.missing_serial")
    except InvalidInput as exc:
        csrf = _csrf_token(csrf_cookie)
        context = {
            "user": user,
            "stock": _stock_of(session, user),
            "check_error": exc.message,
            "code": code,
        }
        return _page(
            request,
            "portal_home.html",
            context,
            csrf=csrf,
            lang=lang,
            lang_cookie=lang_cookie,
            status_code=422,
        )
    path = digital_link_path(parsed.gtin, parsed.serial, lot=parsed.lot, expiry=parsed.expiry)
    return RedirectResponse(path, status_code=303)
