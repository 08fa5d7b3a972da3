"""Response headers every answer carries, whatever route (or refusal) made it.

- ``X-Content-Type-Options: nosniff`` on every answer, so that a browser treats a body as the
  type it is declared as and never as what it guesses from its bytes: an uploaded document
  served as ``application/pdf`` cannot run as HTML, a JSON answer cannot run as a script.
- ``Cache-Control: no-store`` on every answer that has none of its own and either answers a
  request carrying credentials (an API token, a portal session cookie) or comes from the
  portal: what one participant was shown must stay out of shared caches and history. Routes
  that are public choose their own (the verify page, checkpoints, proofs, static files).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths whose every answer is private, credentials or not (a login form, its refusals).
PRIVATE_PATHS = ("/portal",)


class SecurityHeaders:
    """Add ``nosniff`` to every answer, and ``no-store`` to private ones without a policy.

    ``session_cookie`` names the portal's session cookie: the application that mounts the
    portal passes it, so that this core module imports nothing of the views.
    """

    def __init__(self, app: ASGIApp, *, session_cookie: str) -> None:
        self._app = app
        self._session_cookie = f"{session_cookie}=".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        private = _is_private(scope, self._session_cookie)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if private and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self._app(scope, receive, with_headers)


def _is_private(scope: Scope, session_cookie: bytes) -> bool:
    """Whether the request carries credentials or asks for a portal page."""
    if scope["path"].startswith(PRIVATE_PATHS):
        return True
    for name, value in scope["headers"]:
        if name == b"authorization" or (name == b"cookie" and session_cookie in value):
            return True
    return False
