"""The pages for professionals: log in, then each participant sees only its own data.

* Log-in is with a portal account (e-mail and password, ``medtrace portal user add``) or with
  the participant's API token; both are checked by the same services as the API. The session
  is a signed cookie (``medtrace.web.sessions``): ``HttpOnly``, ``SameSite=Lax``, scoped to
  ``/portal``, ``Secure`` over HTTPS; it never holds a password or a token.
* Every form posts the session's CSRF token; a POST without it is refused with what to do.
* Each page names who may see it with a dependency (``LoggedIn``, ``Recaller``, ...). Every
  refusal (not logged in, another role, no CSRF token) is one ``PortalRefusal``, answered in
  one place (``answer_refusal``): the log-in page, or a 403 page that says why.
* Each page asks the services for the logged-in participant's data only (its stock, the
  alerts that concern it, its reorder plans, its shipments); the regulator's pages (lot
  investigation, recalls, exports) are refused to everyone else.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Annotated, Literal, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Cookie, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine
from sqlmodel import Session

from medtrace.api.deps import EngineDep, SessionDep, SettingsDep, TemperaturePolicyDep
from medtrace.api.errors import headers_for, status_for
from medtrace.api.workers import WorkerPool
from medtrace.bounds import within_time_range
from medtrace.config import Settings
from medtrace.errors import InvalidInput, MedtraceError, Throttled, Unauthenticated
from medtrace.labels import PAGE_FORMATS
from medtrace.models import Participant, Role
from medtrace.models.alerts import AlertKind, Severity
from medtrace.networks import client_network
from medtrace.policies import login_throttle, planning_parameters
from medtrace.protocol.identifiers import (
    GS1Data,
    check_x20,
    digital_link_path,
    parse_code,
    parse_gtin,
)
from medtrace.protocol.verdicts import signal_of_verdict
from medtrace.schemas.reorder import ReorderPlansPublic
from medtrace.services import portal_accounts, registry
from medtrace.services.alerts import list_alerts
from medtrace.services.grants import list_capture_grants
from medtrace.services.investigation import investigate_lot
from medtrace.services.label_sheets import lot_label_sheet
from medtrace.services.lot_exports import lot_csv, lot_epcis
from medtrace.services.portal_accounts import LoginThrottle
from medtrace.services.recalls import reach_csv, recall_lot_on_session, recall_reach
from medtrace.services.reorder import plans_csv, reorder_plans_for
from medtrace.services.shipments import shipments_in_transit
from medtrace.services.stock import stock_of
from medtrace.services.verify import verify_unit
from medtrace.web import sessions
from medtrace.web.routes import render
from medtrace.web.sessions import PortalSession

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

LangQuery = Annotated[str | None, Query()]
LangCookie = Annotated[str | None, Cookie(alias="lang")]


@dataclass(frozen=True)
class Visit:
    """One request to the portal: its session, who is logged in, and the page language."""

    request: Request
    secret: str
    session: PortalSession
    participant: Participant | None
    account: str | None
    """How they logged in, for the page header: the e-mail address, or None for a token."""
    new_cookie: bool
    https: bool
    """Served over HTTPS (the request's scheme, or the HTTPS public URL behind a proxy)."""
    lang: str | None
    lang_cookie: str | None


def _who(db: Session, session: PortalSession) -> tuple[Participant, str | None] | None:
    """The participant (and account e-mail) a session still stands for, or None: a disabled
    account, a changed password or a revoked token ends its sessions."""
    if session.user_id is not None:
        account = portal_accounts.get_account(session=db, user_id=session.user_id)
        if account is None or sessions.fingerprint(account.user.password_hash) != session.password:
            return None
        return account.participant, account.user.email
    if session.token_hash is not None:
        found = portal_accounts.participant_of_token_hash(session=db, token_hash=session.token_hash)
        return None if found is None else (found, None)
    return None


def visit(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    lang: LangQuery = None,
    lang_cookie: LangCookie = None,
) -> Visit:
    """The request's visit; a missing, forged, expired or ended session becomes a new one."""
    secret = settings.web.session_secret
    session = sessions.current(request, secret)
    who = None
    if session is not None and session.logged_in:
        with Session(engine) as db:
            who = _who(db, session)
            if who is not None:
                db.expunge(who[0])
    if session is None or (session.logged_in and who is None):
        session, fresh = PortalSession(), True
    else:
        fresh = False
    participant, account = who if who else (None, None)
    https = request.url.scheme == "https" or settings.public_url.startswith("https://")
    return Visit(request, secret, session, participant, account, fresh, https, lang, lang_cookie)


VisitDep = Annotated[Visit, Depends(visit)]


def _page(
    visit: Visit, template: str, context: Mapping[str, object], *, status_code: int = 200
) -> HTMLResponse:
    """A portal page in the visitor's language, never cached, with the session cookie."""
    response = render(
        visit.request,
        template,
        {
            **context,
            "csrf": visit.session.csrf,
            "user": visit.participant,
            "account": visit.account,
        },
        lang=visit.lang,
        lang_cookie=visit.lang_cookie,
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if visit.new_cookie:
        sessions.store(response, visit.session, visit.secret, secure=visit.https)
    return response


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/portal/login", status_code=303)


class PortalRefusal(Exception):
    """Why the portal will not serve a request, raised by the role guard and the CSRF check
    so that no handler builds its own refusal; ``answer_refusal`` is the one place that says
    what a refused visitor sees."""

    def __init__(self, visit: Visit, reason: Literal["login", "role", "csrf"]) -> None:
        super().__init__(reason)
        self.visit = visit
        self.reason = reason
        """``login``: no one is logged in; ``role``: the page is for other roles; ``csrf``:
        a form posted without this session's CSRF token."""


async def answer_refusal(request: Request, exc: Exception) -> Response:
    """The answer to a ``PortalRefusal`` (registered where the portal is mounted): the log-in
    page for a visitor not logged in, else a 403 page that says why and what to do."""
    assert isinstance(exc, PortalRefusal)
    if exc.reason == "login":
        return _login_redirect()
    return _page(exc.visit, "portal_refused.html", {"reason": exc.reason}, status_code=403)


def _guard(*roles: Role) -> Callable[[Visit], Awaitable[Participant]]:
    """A dependency for the pages of ``roles`` (any role when none is named)."""

    async def logged_in(visit: VisitDep) -> Participant:
        """The logged-in participant; raises ``PortalRefusal`` when no one is logged in or
        their role is not one of ``roles``."""
        if visit.participant is None:
            raise PortalRefusal(visit, "login")
        if roles and visit.participant.role not in roles:
            raise PortalRefusal(visit, "role")
        return visit.participant

    return logged_in


STOCK_HOLDERS = (Role.MANUFACTURER, Role.DISTRIBUTOR, Role.PHARMACY)
RECALLERS = (Role.REGULATOR, Role.MANUFACTURER)

LoggedIn = Annotated[Participant, Depends(_guard())]
StockHolder = Annotated[Participant, Depends(_guard(*STOCK_HOLDERS))]
Recaller = Annotated[Participant, Depends(_guard(*RECALLERS))]
"""A regulator, or a manufacturer (for its own products: the services check which)."""
Pharmacy = Annotated[Participant, Depends(_guard(Role.PHARMACY))]
Shipper = Annotated[Participant, Depends(_guard(Role.MANUFACTURER, Role.DISTRIBUTOR))]
Manufacturer = Annotated[Participant, Depends(_guard(Role.MANUFACTURER))]


async def _form(visit: Visit) -> dict[str, str]:
    """The posted form; raises ``PortalRefusal`` unless it carries this session's CSRF token."""
    body = (await visit.request.body()).decode(errors="replace")
    fields = {k: v[0] for k, v in parse_qs(body).items()}
    if not sessions.csrf_matches(visit.session, fields.get("csrf")):
        raise PortalRefusal(visit, "csrf")
    return fields


@router.get("/login", response_class=HTMLResponse)
def login_form(visit: VisitDep) -> Response:
    """The log-in form (e-mail and password, or the organisation's API token)."""
    if visit.participant is not None:
        return RedirectResponse("/portal", status_code=303)
    return _page(visit, "portal_login.html", {})


def _logged_in(visit: Visit, session: PortalSession) -> Response:
    """Start ``session`` (a new CSRF token) for who just logged in, and go to their page."""
    response = RedirectResponse("/portal", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    sessions.store(response, session, visit.secret, secure=visit.https)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(visit: VisitDep, engine: EngineDep, settings: SettingsDep) -> Response:
    """Check the password (or the API token) in the password pool, off the event loop; on
    success start the session. Too many failures answer 429 with ``Retry-After``."""
    fields = await _form(visit)
    email, token = fields.get("email", "").strip(), fields.get("token", "").strip()
    client = visit.request.client
    credentials = _Credentials(
        email=email,
        password=fields.get("password", ""),
        token=token,
        network=client_network(client.host if client else ""),
        throttle=login_throttle(settings),
    )
    pool: WorkerPool = visit.request.app.state.passwords
    try:
        session = await pool.run(partial(_check_credentials, engine, credentials))
    except (Unauthenticated, Throttled) as exc:
        error = "throttled" if isinstance(exc, Throttled) else "password" if email else "token"
        refused = _page(
            visit,
            "portal_login.html",
            {"error": error, "rule": exc.rule, "email": email, **_retry(exc)},
            status_code=status_for(exc),
        )
        refused.headers.update(headers_for(exc) or {})
        return refused
    return _logged_in(visit, session)


def _retry(exc: MedtraceError) -> dict[str, int]:
    """When the log-in page tells a throttled visitor to try again."""
    return {"retry_after": exc.retry_after} if isinstance(exc, Throttled) else {}


@dataclass(frozen=True)
class _Credentials:
    """What a log-in form sent, and where from."""

    email: str
    password: str
    token: str
    network: str
    throttle: LoginThrottle


def _check_credentials(engine: Engine, credentials: _Credentials) -> PortalSession:
    """The session of a portal account (e-mail and password) or of an API token; raises
    ``Unauthenticated`` or ``Throttled``."""
    with Session(engine, expire_on_commit=False) as db:
        if credentials.email:
            account = portal_accounts.log_in(
                session=db,
                email=credentials.email,
                password=credentials.password,
                network=credentials.network,
                throttle=credentials.throttle,
            )
            fingerprint = sessions.fingerprint(account.user.password_hash)
            return PortalSession.begin(user_id=account.user.id, password=fingerprint)
        registry.authenticate(session=db, token=credentials.token)
        return PortalSession.begin(token_hash=registry.hash_token(credentials.token))


@router.post("/logout")
async def logout(visit: VisitDep) -> Response:
    """End the session (a CSRF-checked post, so a link elsewhere cannot log anyone out)."""
    await _form(visit)  # refuses a post without the CSRF token
    response = _login_redirect()
    sessions.clear(response)
    return response


def _lot_key(gtin: str | None, lot: str | None) -> tuple[str, str]:
    """A lot named in a form or a path, checked (``InvalidInput`` naming the rule)."""
    return parse_gtin(gtin or ""), check_x20(lot or "", field="lot")


@router.get("", response_class=HTMLResponse)
def home(
    visit: VisitDep,
    user: LoggedIn,
    session: SessionDep,
    gtin: Annotated[str | None, Query()] = None,
    lot: Annotated[str | None, Query()] = None,
    after: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The participant's page: its stock, or for a regulator the lot investigation."""
    if user.role is Role.REGULATOR:
        found = _lot_investigation(session, user, gtin, lot, after)
        return _page(visit, "portal_home.html", found)
    today = dt.datetime.now(dt.UTC).date()
    stock = stock_of(session=session, participant=user, today=today)
    return _page(visit, "portal_home.html", {"stock": stock})


def _lot_investigation(
    session: Session, user: Participant, gtin: str | None, lot: str | None, after: str
) -> dict[str, object]:
    """Every unit of a lot with its state, current holder, alerts and recall (regulators)."""
    if not gtin or not lot:
        return {"query": None}
    try:
        key = _lot_key(gtin, lot)
    except InvalidInput as exc:
        return {"query": (gtin, lot), "error": exc.message}
    found = investigate_lot(session=session, participant=user, gtin=key[0], lot=key[1], after=after)
    return {"query": key, "lot": found}


@router.get("/stock.csv")
def stock_csv(user: StockHolder, session: SessionDep) -> Response:
    """The participant's stock as CSV (RFC 4180), one row per product, lot and expiry."""
    today = dt.datetime.now(dt.UTC).date()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["gtin", "lot", "expiry", "count", "status"])
    for row in stock_of(session=session, participant=user, today=today):
        writer.writerow([row.gtin, row.lot, row.expiry, row.count, row.status])
    return _download(out.getvalue(), "text/csv; charset=utf-8", f"stock-{user.gln}-{today}.csv")


def _download(content: str | bytes, media_type: str, filename: str) -> Response:
    return Response(content, media_type=media_type, headers=_download_headers(filename))


def _download_headers(filename: str) -> dict[str, str]:
    """A file to save, never kept by a cache: a participant's own data."""
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }


@router.get("/check", response_class=HTMLResponse)
def check_code(
    visit: VisitDep,
    user: StockHolder,
    session: SessionDep,
    settings: SettingsDep,
    temperature: TemperaturePolicyDep,
    code: Annotated[str, Query(max_length=512)] = "",
) -> Response:
    """Verify before dispensing: the verdict of a scanned or typed code, in the scan
    station's words (OK, EXPIRED, RECALLED, QUARANTINED, SUSPECT, UNKNOWN).

    ``parse_code`` reads a GS1 Digital Link, a GS1 element string or HIBC; only a code that
    names one serialised unit (GTIN + serial) can be verified. The check is the verify
    service's, but not counted as a public verification (that is for patients' scans).
    """
    today = dt.datetime.now(dt.UTC).date()
    stock = stock_of(session=session, participant=user, today=today)
    context: dict[str, object] = {"stock": stock, "code": code}
    try:
        parsed = parse_code(code)
        if not isinstance(parsed, GS1Data) or parsed.gtin is None or parsed.serial is None:
            raise InvalidInput("this code does not name one pack", rule="gs1.missing_serial")
        answer = verify_unit(
            session=session,
            gtin=parsed.gtin,
            serial=parsed.serial,
            lot=parsed.lot,
            expiry=parsed.expiry,
            today=today,
            base_url=settings.public_url,
            temperature=temperature,
        )
    except InvalidInput as exc:
        context.update(check_error=exc.message, check_rule=exc.rule)
        return _page(visit, "portal_home.html", context, status_code=422)
    signal = signal_of_verdict(answer.verdict.value)
    context["check"] = {
        "signal": signal.value,
        "css": answer.verdict.value,
        "reasons": answer.reasons,
        "unit": answer.unit,
        "yours": answer.unit is not None
        and answer.unit.holder is not None
        and answer.unit.holder.gln == user.gln,
        "link": digital_link_path(parsed.gtin, parsed.serial, lot=parsed.lot, expiry=parsed.expiry),
    }
    return _page(visit, "portal_home.html", context)


@router.get("/alerts", response_class=HTMLResponse)
def alert_inbox(
    visit: VisitDep,
    user: LoggedIn,
    session: SessionDep,
    kind: Annotated[str | None, Query()] = None,
    severity: Annotated[str | None, Query()] = None,
    gtin: Annotated[str | None, Query()] = None,
    lot: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query()] = None,
) -> Response:
    """The alerts that concern the participant (a regulator: all), newest first, with the
    API's filters (kind, severity, GTIN, lot, since)."""
    filters = {"kind": kind, "severity": severity, "gtin": gtin, "lot": lot, "since": since}
    context: dict[str, object] = {
        "filters": filters,
        "kinds": list(AlertKind),
        "severities": list(Severity),
    }
    try:
        context["alerts"] = list_alerts(
            session=session,
            participant=user,
            kind=_choice(AlertKind, kind, "kind"),
            severity=_choice(Severity, severity, "severity"),
            gtin=parse_gtin(gtin) if gtin else None,
            lot=check_x20(lot, field="lot") if lot else None,
            since=_since(since),
            limit=ALERTS_PER_PAGE,
        )
    except InvalidInput as exc:
        context.update(error=exc.message, rule=exc.rule, alerts=[])
        return _page(visit, "portal_alerts.html", context, status_code=422)
    return _page(visit, "portal_alerts.html", context)


ALERTS_PER_PAGE = 200
_E = TypeVar("_E", bound=StrEnum)


def _choice(enum: type[_E], value: str | None, name: str) -> _E | None:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError as exc:
        raise InvalidInput(
            f"{name} is one of {', '.join(e.value for e in enum)}", rule=f"alerts.{name}"
        ) from exc


def _since(value: str | None) -> dt.datetime | None:
    """A date (midnight UTC) or an RFC 3339 time."""
    if not value:
        return None
    try:
        moment = within_time_range(dt.datetime.fromisoformat(value))
    except ValueError as exc:
        raise InvalidInput("since is a date (YYYY-MM-DD) or a time", rule="alerts.since") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@router.get("/grants", response_class=HTMLResponse)
def grants_page(visit: VisitDep, user: LoggedIn, session: SessionDep) -> Response:
    """The capture grants the participant gave or received (a regulator: every grant), with
    who created and revoked each: what the API's ``GET /api/v1/capture-grants`` answers."""
    found = list_capture_grants(session=session, participant=user)
    return _page(visit, "portal_grants.html", {"grants": found})


@router.get("/recall", response_class=HTMLResponse, dependencies=[Depends(_guard(*RECALLERS))])
def recall_form(visit: VisitDep) -> Response:
    """The recall form (a regulator, or a manufacturer for its own products)."""
    return _page(visit, "portal_recall.html", {"form": {}})


@router.post("/recall", response_class=HTMLResponse)
async def issue_recall(visit: VisitDep, user: Recaller, session: SessionDep) -> Response:
    """Record the recall on the participant's session, then show its reach."""
    fields = await _form(visit)
    form = {k: fields.get(k, "").strip() for k in ("gtin", "lot", "reason")}
    try:
        gtin, lot = _lot_key(form["gtin"], form["lot"])
        recall_lot_on_session(
            session=session, participant=user, gtin=gtin, lot=lot, reason=form["reason"]
        )
    except MedtraceError as exc:
        context = {"form": form, "error": exc.message, "rule": exc.rule}
        return _page(visit, "portal_recall.html", context, status_code=status_for(exc))
    return RedirectResponse(f"/portal/lots/{gtin}/{quote(lot, safe='')}/reach", status_code=303)


@router.get("/lots/{gtin}/{lot}/reach", response_class=HTMLResponse)
def recall_reach_page(
    visit: VisitDep,
    user: Recaller,
    session: SessionDep,
    gtin: str,
    lot: str,
    after: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """A recalled lot's reach: its counts, then a page of units (after the serial ``after``),
    who holds each, dispensed or not."""
    try:
        key = _lot_key(gtin, lot)
        reach = recall_reach(
            session=session, participant=user, gtin=key[0], lot=key[1], after=after
        )
    except MedtraceError as exc:
        return _page(
            visit,
            "portal_reach.html",
            {"error": exc.message, "rule": exc.rule},
            status_code=status_for(exc),
        )
    return _page(visit, "portal_reach.html", {"reach": reach})


@router.get("/lots/{gtin}/{lot}/reach.csv")
def recall_reach_csv(
    visit: VisitDep, user: Recaller, session: SessionDep, gtin: str, lot: str
) -> Response:
    """Every unit of a recalled lot as CSV, streamed page by page however large the lot."""
    try:
        key = _lot_key(gtin, lot)
        rows = reach_csv(session=session, participant=user, gtin=key[0], lot=key[1])
    except MedtraceError as exc:
        return _refusal_of(visit, exc)
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers=_download_headers(f"reach-{key[0]}-{_file_safe(key[1])}.csv"),
    )


@router.get("/lots/{gtin}/{lot}/events.jsonld")
def lot_events_epcis(
    visit: VisitDep, user: Recaller, session: SessionDep, gtin: str, lot: str
) -> Response:
    """Every event of the lot's units as an EPCIS 2.0 document (JSON-LD)."""
    try:
        key = _lot_key(gtin, lot)
        document = lot_epcis(
            session=session, participant=user, gtin=key[0], lot=key[1], now=dt.datetime.now(dt.UTC)
        )
    except MedtraceError as exc:
        return _refusal_of(visit, exc)
    body = json.dumps(document, ensure_ascii=False, indent=1)
    return _download(body, "application/ld+json", f"epcis-{key[0]}-{_file_safe(key[1])}.jsonld")


@router.get("/lots/{gtin}/{lot}/events.csv")
def lot_events_csv(
    visit: VisitDep, user: Recaller, session: SessionDep, gtin: str, lot: str
) -> Response:
    """Every event of the lot's units as CSV, one row per EPCIS event."""
    try:
        key = _lot_key(gtin, lot)
        text = lot_csv(session=session, participant=user, gtin=key[0], lot=key[1])
    except MedtraceError as exc:
        return _refusal_of(visit, exc)
    return _download(text, "text/csv; charset=utf-8", f"events-{key[0]}-{_file_safe(key[1])}.csv")


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _refusal_of(visit: Visit, exc: MedtraceError) -> HTMLResponse:
    """A service's refusal as a page: its message and rule."""
    return _page(
        visit,
        "portal_refused.html",
        {"reason": "rule", "message": exc.message, "rule": exc.rule},
        status_code=status_for(exc),
    )


@router.get("/reorder", response_class=HTMLResponse)
def reorder_page(
    visit: VisitDep, user: Pharmacy, session: SessionDep, settings: SettingsDep
) -> Response:
    """The pharmacy's reorder plan, one row per product, from its dispense history."""
    plans = _plans(session, settings, user)
    return _page(visit, "portal_reorder.html", {"plans": plans.data})


def _plans(session: Session, settings: Settings, user: Participant) -> ReorderPlansPublic:
    return reorder_plans_for(
        session=session,
        participant=user,
        gln=None,
        today=dt.datetime.now(dt.UTC).date(),
        parameters=planning_parameters(settings),
    )


@router.get("/reorder.csv")
def reorder_csv(user: Pharmacy, session: SessionDep, settings: SettingsDep) -> Response:
    """The reorder plan as CSV (the API's columns)."""
    today = dt.datetime.now(dt.UTC).date()
    text = plans_csv(_plans(session, settings, user))
    return _download(text, "text/csv; charset=utf-8", f"reorder-{user.gln}-{today}.csv")


@router.get("/shipments", response_class=HTMLResponse)
def shipments_page(
    visit: VisitDep, user: Shipper, session: SessionDep, temperature: TemperaturePolicyDep
) -> Response:
    """What the participant has shipped that has not arrived, with its temperature."""
    found = shipments_in_transit(session=session, participant=user, policy=temperature)
    return _page(visit, "portal_shipments.html", {"shipments": found})


@router.get(
    "/labels", response_class=HTMLResponse, dependencies=[Depends(_guard(Role.MANUFACTURER))]
)
def labels_page(visit: VisitDep) -> Response:
    """The label sheet form (a manufacturer), and how units are commissioned."""
    return _page(visit, "portal_labels.html", {"form": {}, "pages": list(PAGE_FORMATS)})


@router.get("/labels.pdf")
def label_sheet(
    visit: VisitDep,
    user: Manufacturer,
    session: SessionDep,
    settings: SettingsDep,
    gtin: Annotated[str, Query()] = "",
    lot: Annotated[str, Query()] = "",
    page: Annotated[str, Query()] = "a4",
) -> Response:
    """The PDF label sheet of a lot's units commissioned and still at the manufacturer."""
    try:
        key = _lot_key(gtin, lot)
        pdf = lot_label_sheet(
            session=session,
            participant=user,
            gtin=key[0],
            lot=key[1],
            base_url=settings.public_url,
            page=page,
        )
    except MedtraceError as exc:
        context = {
            "form": {"gtin": gtin, "lot": lot, "page": page},
            "pages": list(PAGE_FORMATS),
            "error": exc.message,
            "rule": exc.rule,
        }
        return _page(visit, "portal_labels.html", context, status_code=status_for(exc))
    return _download(pdf, "application/pdf", f"labels-{key[0]}-{_file_safe(key[1])}.pdf")
