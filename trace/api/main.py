"""Build the app: database, schema, log key, sequencer, routers, error handlers."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from medtrace import __version__
from medtrace.api.deps import refuse_nul_characters
from medtrace.api.errors import install_error_handlers
from medtrace.api.headers import SecurityHeaders
from medtrace.api.limits import BodyLimit, RateLimit, RouteLimit, TokenBuckets
from medtrace.api.observe import Metrics, RequestLog
from medtrace.api.paths import RawPathSegments
from medtrace.api.routes import (
    alerts,
    capture,
    fhir,
    grants,
    health,
    ledger,
    lots,
    metrics,
    queries,
    recalls,
    tiles,
)
from medtrace.api.routes import cn_codes as cn_code_routes
from medtrace.api.routes import devices as device_routes
from medtrace.api.routes import epcis as epcis_routes
from medtrace.api.routes import reorder as reorder_routes
from medtrace.api.routes import sensors as sensor_routes
from medtrace.api.workers import WorkerPool
from medtrace.config import Settings, get_settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.epcis.capture import MAX_DOCUMENT_BYTES as MAX_EPCIS_DOCUMENT_BYTES
from medtrace.ledger import NoteSigner
from medtrace.logs import configure_logging
from medtrace.protocol.keys import derive_secret, load_or_create_key
from medtrace.roles import freeze_startup_heap, log_sequencer
from medtrace.schemas.capture import Refusal
from medtrace.services.portal_accounts import unknown_account_hash
from medtrace.services.verifications import VerificationCounter
from medtrace.web import portal as web_portal
from medtrace.web import routes as web_routes
from medtrace.web import sessions

#: Every refusal has one shape; documented so instead of FastAPI's own 422 body.
REFUSALS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Refusal, "description": "Refused: the rule broken, and why"}
}


def _operation_id(route: APIRoute) -> str:
    """Stable operation ids (tag + function name) for generated clients."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """A medtrace API app; migrates the schema and creates the log key on first start."""
    settings = settings or get_settings()
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    log_key = load_or_create_key(settings.resolved_log_key_path)
    signer = NoteSigner(settings.ledger.origin, log_key)
    web = settings.web
    settings = settings.model_copy(
        update={
            "web": web.model_copy(
                update={
                    "place_salt": web.place_salt or derive_secret(log_key, "place salt"),
                    "session_secret": web.session_secret
                    or derive_secret(log_key, "session secret"),
                }
            )
        }
    )

    verifications = VerificationCounter(engine)
    passwords = WorkerPool(workers=settings.web.password_hash_workers, name="password")
    passwords.submit(unknown_account_hash)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        counting = threading.Thread(
            target=verifications.run, args=(stop,), name="verification-counts", daemon=True
        )
        counting.start()
        thread = None
        if settings.ledger.run_sequencer:
            thread = threading.Thread(
                target=log_sequencer(settings, engine, signer).run,
                args=(stop,),
                name="sequencer",
                daemon=True,
            )
            thread.start()
        yield
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
        counting.join(timeout=10)
        passwords.shutdown()
        engine.dispose()

    app = FastAPI(
        title="medtrace",
        version=__version__,
        summary="Signed custody events for medicines and devices on a verifiable Merkle log",
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_characters)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.signer = signer
    app.state.verifications = verifications
    app.state.passwords = passwords
    app.state.metrics = Metrics(engine)
    install_error_handlers(app)
    app.add_exception_handler(web_portal.PortalRefusal, web_portal.answer_refusal)
    _install_middleware(app, settings)
    routers = (
        health.router,
        metrics.router,
        capture.router,
        grants.router,
        device_routes.stations_router,
        ledger.router,
        tiles.router,
        alerts.router,
        lots.router,
        cn_code_routes.router,
        recalls.router,
        web_routes.router,
        web_portal.router,
        device_routes.sensors_router,
        sensor_routes.router,
        epcis_routes.router,
        queries.router,
        reorder_routes.router,
    )
    for router in routers:
        app.include_router(router, responses=REFUSALS)
    app.include_router(fhir.router)  # FHIR answers errors with OperationOutcome resources
    return app


def worker_app() -> FastAPI:
    """The app of one of several API worker processes (``medtrace serve --workers N``): each
    is a new process, so it sets up its logging from the settings before building the app,
    and freezes what it built out of the garbage collector's way (``freeze_startup_heap``)."""
    settings = get_settings()
    configure_logging(settings.log_format)
    app = create_app(settings)
    freeze_startup_heap()
    return app


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """From the outside in: routing on the client's own path segments (a serial's ``%2F``
    stays in its segment, ``medtrace.api.paths``); the request log sees every answer, limits
    included; the security headers go on every answer, refusals by the limits included; the
    rate limit comes before anything reads the body."""
    own_limits = (
        RouteLimit("/api/v1/lots", settings.lots.max_lot_body_bytes),
        RouteLimit("/epcis/capture", MAX_EPCIS_DOCUMENT_BYTES, "capture.too_large"),
    )
    app.add_middleware(BodyLimit, max_bytes=settings.http.max_body_bytes, routes=own_limits)
    if settings.http.rate_limit > 0:
        tokens = TokenBuckets(rate=settings.http.rate_limit, burst=settings.http.rate_burst)
        failures = TokenBuckets(
            rate=settings.http.auth_failure_rate, burst=settings.http.auth_failure_burst
        )
        app.add_middleware(RateLimit, tokens=tokens, failures=failures)
    app.add_middleware(SecurityHeaders, session_cookie=sessions.COOKIE)
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    app.add_middleware(RawPathSegments)  # first: everything after sees the client's segments
