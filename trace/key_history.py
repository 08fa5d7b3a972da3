"""A signer's keys over time (stations and sensors alike): which key made a signature, whether
that key may still be used, and the rotation and revocation that change them.

A signer keeps every key it ever had. A signature is checked against them newest first; the
key that verifies must then be usable for what it signed:

- a **revoked** key (``revoked_at``, the key may be in someone else's hands) is refused for
  everything that arrives after the revocation, whatever time it claims, since a thief
  chooses the event time but not the arrival time;
- a **rotated** key (``valid_until``, retired in good order) still signs what is stamped
  before the rotation: a station's outbox or a logger's memory may hold it.

What was recorded before either stays verifiable: the history is public
(``GET /api/v1/stations/{id}``, ``GET /api/v1/sensors/{id}``) and never deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from medtrace.errors import InvalidInput, NotFound, SignatureRejected
from medtrace.models import as_utc
from medtrace.protocol.keys import b64
from medtrace.schemas.keys import KeyPublic


class HistoricKey(Protocol):
    """A key and its validity, as the key tables store them."""

    public_key: bytes
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None


K = TypeVar("K", bound=HistoricKey)


def signing_key(keys: Sequence[K], verify: Callable[[bytes], None]) -> K:
    """The key among ``keys`` (newest first) for which ``verify`` passes.

    ``verify(public_key)`` raises ``SignatureRejected`` when the signature does not verify
    with that key; the last such error is raised when no key fits. The newest key is tried
    first, so an ordinary capture costs one Ed25519 check.
    """
    failure = SignatureRejected("no key is registered", rule="signature.invalid")
    for key in keys:
        try:
            verify(key.public_key)
        except SignatureRejected as exc:
            failure = exc
            continue
        return key
    raise failure


def check_key_usable(key: HistoricKey, *, owner: str, name: str, signed_at: dt.datetime) -> None:
    """Refuse what a revoked key signed, or what a rotated key signed after its rotation.

    ``owner`` names the kind of signer in the rule (``station.key_revoked``,
    ``sensor.key_rotated``); ``name`` is the signer's id and ``signed_at`` the time the
    signed content claims, for the message.
    """
    if key.revoked_at is not None:
        raise SignatureRejected(
            f"{owner} {name!r} signed with a key revoked at "
            f"{as_utc(key.revoked_at).isoformat(timespec='seconds')}",
            rule=f"{owner}.key_revoked",
        )
    if key.valid_until is not None and signed_at >= as_utc(key.valid_until):
        raise SignatureRejected(
            f"{owner} {name!r} signed something of {signed_at.isoformat()} with a key "
            f"rotated out at {as_utc(key.valid_until).isoformat(timespec='seconds')}",
            rule=f"{owner}.key_rotated",
        )


def retire_for(keys: Sequence[HistoricKey], new_key: bytes, *, now: dt.datetime) -> None:
    """A rotation to ``new_key``: every key still open is valid until ``now``.

    Raises ``InvalidInput`` (``key.reused``) when the signer had ``new_key`` before: a key
    that was retired or revoked must not come back.
    """
    if any(key.public_key == new_key for key in keys):
        raise InvalidInput("this key was used before; generate a new one", rule="key.reused")
    for key in keys:
        if key.valid_until is None:
            key.valid_until = now


def revoke(keys: Sequence[K], wanted: bytes | None, *, now: dt.datetime) -> list[K]:
    """Revoke the key ``wanted`` (or, with None, every key) at ``now``; return those revoked
    now. Raises ``NotFound`` (``key.unknown``) when the signer never had ``wanted``."""
    chosen = [key for key in keys if wanted is None or key.public_key == wanted]
    if not chosen:
        raise NotFound("this key was never registered here", rule="key.unknown")
    revoked = [key for key in chosen if key.revoked_at is None]
    for key in revoked:
        key.revoked_at = now
        key.valid_until = key.valid_until or now
    return revoked


def key_public(key: HistoricKey) -> KeyPublic:
    """The public view of one key and its validity."""
    return KeyPublic(
        public_key=b64(key.public_key),
        valid_from=as_utc(key.valid_from),
        valid_until=as_utc(key.valid_until) if key.valid_until else None,
        revoked_at=as_utc(key.revoked_at) if key.revoked_at else None,
    )
