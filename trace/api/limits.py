"""Request limits, as ASGI middleware: a largest body, and a rate per API token.

Both answer with the one error shape of the API (``{"detail": {"rule", "message"}}``) before
the request reaches a route, and record the rule in the request's state for the request log.

The rate limit is a token bucket per bearer token, kept in the memory of one API process:
behind a load balancer each of N processes lets a token through at the configured rate, so
the deployment as a whole allows up to N times that. That bounds a runaway client without a
shared store; a limit that must hold exactly across replicas belongs in the proxy in front.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths whose routes enforce a larger limit of their own (PDF documents, EPCIS documents).
OWN_BODY_LIMITS = ("/api/v1/lots", "/epcis/capture")


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
    """Refuse a request body larger than ``max_bytes`` with 413 ``input.too_large``, whether
    it declares its length or streams in chunks."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OWN_BODY_LIMITS):
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._refuse(scope, send)
            return
        seen = 0
        overflow = False

        async def counted() -> Message:
            nonlocal seen, overflow
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self._max:  # stop reading: the app answers, and that answer is replaced
                overflow = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def replaced(message: Message) -> None:
            if not overflow:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._refuse(scope, send)

        await self._app(scope, counted, replaced)

    def _message(self) -> str:
        return f"the request body is larger than {self._max} bytes"

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_refusal(scope, send, 413, "input.too_large", self._message(), {})


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
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]


class RateLimit:
    """429 ``rate.limited`` with ``Retry-After`` for a bearer token over its rate. Requests
    without a token (the public verify pages, proofs, tiles) are not limited here."""

    def __init__(self, app: ASGIApp, *, buckets: TokenBuckets) -> None:
        self._app = app
        self._buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = (
            dict(scope["headers"]).get(b"authorization") if scope["type"] == "http" else None
        )
        if authorization is None:
            await self._app(scope, receive, send)
            return
        wait = self._buckets.take(hashlib.sha256(authorization).digest())
        if wait == 0:
            await self._app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        await send_refusal(
            scope,
            send,
            429,
            "rate.limited",
            f"too many requests with this API token; retry in {seconds} s",
            {"Retry-After": str(seconds)},
        )
