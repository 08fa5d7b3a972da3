"""The errors of medtrace's core, one tree, each naming the rule it enforces.

::

    MedtraceError                 (rule, message)
    ├── InvalidInput              malformed or impossible input          → HTTP 422
    │   └── TooLarge              a body beyond the size limit           → HTTP 413
    ├── Unauthenticated           no or unknown API token                → HTTP 401
    ├── SignatureRejected         unknown/inactive/foreign station key,
    │                             or a signature that does not verify    → HTTP 403
    ├── Forbidden                 the caller may not do or see this      → HTTP 403
    ├── NotFound                  the thing asked for does not exist     → HTTP 404
    ├── CustodyViolation          the move breaks a custody rule         → HTTP 409
    ├── Conflict                  the store refused a concurrent write   → HTTP 409
    └── Throttled                 too many attempts; retry_after seconds → HTTP 429

The ``rule`` is a stable dotted name (``custody.not_holder``) that clients may branch on; the
message is for a person. Domain code raises these and never imports FastAPI: the API maps them
to status codes in one table (``medtrace.api.errors``).
"""

from __future__ import annotations

from typing import Any


class MedtraceError(Exception):
    """Base of every error medtrace's core raises on purpose."""

    default_rule = "medtrace.error"

    def __init__(self, message: str, *, rule: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule or self.default_rule
        self.context = context

    def detail(self) -> dict[str, Any]:
        """The JSON ``detail`` body of an HTTP error: rule, message and any context."""
        return {"rule": self.rule, "message": self.message, **self.context}


class InvalidInput(MedtraceError):
    """The input is malformed or impossible (bad check digit, bad date, bad JSON)."""

    default_rule = "input.invalid"


class TooLarge(InvalidInput):
    """The request body is larger than the service accepts."""

    default_rule = "input.too_large"


class Unauthenticated(MedtraceError):
    """The request carries no API token, or one that is unknown or revoked."""

    default_rule = "auth.invalid_token"


class SignatureRejected(MedtraceError):
    """A signed envelope cannot be trusted: unknown, inactive or foreign key, bad signature."""

    default_rule = "signature.invalid"


class Forbidden(MedtraceError):
    """The caller is authenticated but its role does not allow this (a recall by someone
    who neither makes the lot nor regulates, another participant's report)."""

    default_rule = "auth.forbidden"


class NotFound(MedtraceError):
    """The thing asked for does not exist."""

    default_rule = "not_found"


class CustodyViolation(MedtraceError):
    """The event breaks a custody rule; nothing was written."""

    default_rule = "custody.violation"


class Conflict(MedtraceError):
    """A concurrent write won; retrying the request is safe."""

    default_rule = "store.conflict"


class Throttled(MedtraceError):
    """Too many attempts (failed log-ins of an account or from a network); the caller may
    try again after ``retry_after`` seconds, which the API sends as ``Retry-After``."""

    default_rule = "rate.limited"

    def __init__(self, message: str, *, retry_after: int, rule: str | None = None) -> None:
        super().__init__(message, rule=rule)
        self.retry_after = retry_after
