"""Request limits, as ASGI middleware: a largest body, and a rate per API token.

Both answer with the one error shape of the API (``{"detail": {"rule", "message"}}``) before
the request reaches a route, and record the rule in the request's state for the request log.

The rate limit is a token bucket per API token (as authentication reads it), and one per
client network for requests whose token fails authentication, kept in the memory of one API
process: behind a load balancer each of N processes lets a token through at the configured
rate, so the deployment as a whole allows up to N times that. That bounds a runaway client
without a database write per request; a limit that must hold exactly across replicas belongs
in the proxy in front. (The portal's log-in throttle, a brute-force guard, is shared through
the database: ``medtrace.services.portal_accounts``.)
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medtrace.networks import client_network


@dataclass(frozen=True)
class RouteLimit:
    """A larger body limit for the paths under ``prefix`` (PDF documents, EPCIS documents),
    refused with its own ``rule``; still counted while streaming, before authentication."""

    prefix: str
    max_bytes: int
    rule: str = "input.too_large"


class BodyTooLarge(Exception):
    """Raised into the app by ``BodyLimit``'s ``receive`` when the body passes its limit, so
    that no route acts on a body cut short."""


async def send_refusal(
    scope: Scope, send: Send, status: int, rule: str, message: str, headers: dict[str, str]
) -> None:
    """Answer with the API's error shape and note the rule for the request log."""
    scope.setdefault("state", {})["rule"] = rule
    body = json.dumps({"detail": {"rule": rule, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a request body larger than its limit with 413 ``input.too_large`` (or the rule
    of its ``RouteLimit``), whether it declares its length or streams in chunks.

    Before the route runs, and so before authentication: a declared length over the limit
    is refused unread, and a streamed body is counted as it arrives, so at most the limit
    and one chunk are read. The app then sees ``BodyTooLarge`` instead of the rest; whatever
    it answers is replaced by the refusal.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, routes: Sequence[RouteLimit] = ()) -> None:
        self._app = app
        self._default = RouteLimit("/", max_bytes)
        self._routes = routes

    def limit_of(self, path: str) -> RouteLimit:
        """The limit of a request path."""
        return next((r for r in self._routes if path.startswith(r.prefix)), self._default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit.max_bytes:
            await _refuse_too_large(scope, send, limit)
            return
        seen = 0
        overflow = started = False

        async def counted() -> Message:
            nonlocal seen, overflow
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit.max_bytes:
                overflow = True
                raise BodyTooLarge(limit.max_bytes)
            return message

        async def replaced(message: Message) -> None:
            nonlocal started
            if not overflow:
                started = True
                await send(message)
            elif message["type"] == "http.response.start":
                started = True
                await _refuse_too_large(scope, send, limit)

        try:
            await self._app(scope, counted, replaced)
        except BodyTooLarge:
            if started:  # an answer is under way: the connection is all that can be ended
                raise
            await _refuse_too_large(scope, send, limit)


async def _refuse_too_large(scope: Scope, send: Send, limit: RouteLimit) -> None:
    message = f"the request body is larger than {limit.max_bytes} bytes"
    await send_refusal(scope, send, 413, limit.rule, message, {})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per key: ``rate`` per second, up to ``burst`` at once."""

    #: Past this many keys, buckets that have refilled completely are forgotten (a full
    #: bucket and a missing one behave the same), so random tokens cannot fill the memory.
    MAX_KEYS = 10_000

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[bytes, _Bucket] = {}

    def take(self, key: bytes) -> float:
        """Take one token for ``key``: 0 when allowed, else the seconds until one is there."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def wait(self, key: bytes) -> float:
        """The seconds until ``key`` has a token (0: it has one now), taking none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self._burst, bucket.tokens + (self._clock() - bucket.updated) * self._rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def _refilled(self, key: bytes) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]


def bearer_token(scope: Scope) -> str | None:
    """The API token of a request as authentication reads it (``HTTPBearer``): the scheme in
    any case, the token without the spaces around it; None without a bearer token."""
    header = dict(scope["headers"]).get(b"authorization")
    if header is None:
        return None
    scheme, token = get_authorization_scheme_param(header.decode("latin-1"))
    return token if scheme.lower() == "bearer" and token else None


class RateLimit:
    """429 ``rate.limited`` with ``Retry-After``: for an API token over its rate, and for a
    client network (``medtrace.networks``) whose requests with an ``Authorization`` header
    keep failing authentication (401) over the failure rate.

    A token's bucket is keyed by the token as authentication reads it, so no spelling of
    the header (``bearer``, ``BEARER``, extra spaces) gets a bucket of its own; made-up
    tokens each get a bucket, but their 401 answers empty their network's bucket, which then
    refuses every request with an ``Authorization`` header from that network. Requests
    without one (the public verify pages, proofs, tiles) are not limited here.
    """

    def __init__(self, app: ASGIApp, *, tokens: TokenBuckets, failures: TokenBuckets) -> None:
        self._app = app
        self._tokens = tokens
        self._failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or b"authorization" not in dict(scope["headers"]):
            await self._app(scope, receive, send)
            return
        network = client_network(scope["client"][0] if scope.get("client") else "").encode()
        token = bearer_token(scope)
        wait = self._failures.wait(network)
        if wait == 0 and token is not None:
            wait = self._tokens.take(hashlib.sha256(token.encode()).digest())
        if wait > 0:
            await self._refuse(scope, send, wait)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self._failures.take(network)
            await send(message)

        await self._app(scope, receive, counted)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, wait: float) -> None:
        seconds = max(1, math.ceil(wait))
        await send_refusal(
            scope,
            send,
            429,
            "rate.limited",
            "too many requests with this API token, or with unknown tokens from this network; "
            f"retry in {seconds} s",
            {"Retry-After": str(seconds)},
        )
