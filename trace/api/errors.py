"""Map the core's errors to HTTP, in one table.

Every 4xx body has one shape: ``{"detail": {"rule": ..., "message": ..., ...context}}``.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from medtrace.errors import (
    Conflict,
    CustodyViolation,
    Forbidden,
    InvalidInput,
    MedtraceError,
    NotFound,
    SignatureRejected,
    Throttled,
    TooLarge,
    Unauthenticated,
)

STATUS_BY_ERROR: dict[type[MedtraceError], int] = {
    InvalidInput: 422,
    TooLarge: 413,
    Unauthenticated: 401,
    SignatureRejected: 403,
    Forbidden: 403,
    NotFound: 404,
    CustodyViolation: 409,
    Conflict: 409,
    Throttled: 429,
}


def status_for(exc: MedtraceError) -> int:
    """The HTTP status of an error: the entry of its nearest class in the table."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


async def _medtrace_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MedtraceError)
    request.state.rule = exc.rule  # for the request log and the refusal counter
    return JSONResponse(
        {"detail": exc.detail()}, status_code=status_for(exc), headers=headers_for(exc)
    )


def headers_for(exc: MedtraceError) -> dict[str, str] | None:
    """The headers a refusal carries: the scheme to authenticate with, or when to retry."""
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Throttled):
        return {"Retry-After": str(exc.retry_after)}
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    request.state.rule = "input.invalid"
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    detail = {"rule": "input.invalid", "message": f"{where}: {first['msg']}", "errors": errors}
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """The framework's own refusals (no such path, method not allowed) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    rule = "http." + phrase.lower().replace(" ", "_").replace("-", "_")
    request.state.rule = rule
    message = exc.detail if isinstance(exc.detail, str) else phrase
    return JSONResponse(
        {"detail": {"rule": rule, "message": message}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(MedtraceError, _medtrace_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
