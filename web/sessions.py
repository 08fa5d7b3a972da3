"""The portal's session: a signed cookie, and the CSRF token every form carries.

The cookie holds base64url(JSON) and its HMAC-SHA256 under the ``session_secret`` setting;
a cookie whose MAC or expiry fails is no session at all. It names the account (a portal user,
with a fingerprint of its password hash, so changing the password ends its sessions) or the
SHA-256 of the API token it logged in with (revoking the token ends them), never a secret.
Every session, even before log-in, has a random CSRF token: each form posts it and a POST
without it is refused (the synchronizer token pattern of the OWASP CSRF cheat sheet). Log-in
starts a new session, with a new CSRF token, so a token seen before log-in is worthless after.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (not sent on cross-site
posts), ``Secure`` over HTTPS (the request's scheme, or a public URL that is HTTPS, as behind
a TLS-terminating proxy) and scoped to ``/portal``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from fastapi import Request, Response

COOKIE = "portal_session"
PATH = "/portal"
LIFETIME = 8 * 3600
"""Seconds a session lasts: one working shift."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(secret_hash: str) -> str:
    """A short, one-way mark of a stored credential hash, to notice when it changes."""
    return hashlib.sha256(secret_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PortalSession:
    """What the cookie says: the CSRF token, and who logged in (none before log-in)."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires: int = field(default_factory=lambda: int(time.time()) + LIFETIME)
    user_id: int | None = None
    """The portal account, for a password log-in."""
    password: str | None = None
    """``fingerprint`` of the account's password hash when the session began."""
    token_hash: str | None = None
    """The SHA-256 of the API token, for a token log-in."""

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None or self.token_hash is not None

    @classmethod
    def begin(
        cls,
        *,
        user_id: int | None = None,
        password: str | None = None,
        token_hash: str | None = None,
    ) -> PortalSession:
        """A fresh session (new CSRF token, full lifetime) for the one who just logged in."""
        return cls(user_id=user_id, password=password, token_hash=token_hash)


def encode(session: PortalSession, secret: str) -> str:
    """The cookie value: payload and its MAC."""
    payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def decode(value: str | None, secret: str) -> PortalSession | None:
    """The session in a cookie value, or None if it is missing, forged or expired."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        session = PortalSession(**json.loads(_unb64(payload)))
    except (binascii.Error, ValueError, TypeError):
        return None
    return session if session.expires > time.time() else None


def current(request: Request, secret: str) -> PortalSession | None:
    """The request's valid session, if any."""
    return decode(request.cookies.get(COOKIE), secret)


def store(response: Response, session: PortalSession, secret: str, *, secure: bool) -> None:
    """Set ``session`` as the response's cookie, with the portal's cookie attributes;
    ``secure`` when the portal is served over HTTPS."""
    response.set_cookie(
        COOKIE,
        encode(session, secret),
        max_age=max(0, session.expires - int(time.time())),
        httponly=True,
        samesite="lax",
        secure=secure,
        path=PATH,
    )


def clear(response: Response) -> None:
    """Remove the cookie (log-out)."""
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax")


def csrf_matches(session: PortalSession | None, sent: str | None) -> bool:
    """Whether a posted CSRF token is this session's (constant-time)."""
    if session is None or not sent:
        return False
    return hmac.compare_digest(sent.encode(), session.csrf.encode())
