"""Which of a signer's keys made a signature, and whether that key may still be used.

A station (or a sensor) keeps every key it ever had. A signature is checked against them
newest first; the key that verifies must then be usable for this event:

- a **revoked** key (``revoked_at``, the key may be in someone else's hands) is refused for
  every event that arrives after the revocation, whatever ``event_time`` it claims, since a
  thief chooses the event time but not the arrival time;
- a **rotated** key (``valid_until``, retired in good order) still signs events whose
  ``event_time`` is before the rotation: a station's outbox may hold them.

Events recorded before either stay verifiable: the history is public
(``GET /api/v1/stations/{id}``) and never deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol, TypeVar

from medtrace.envelope import CanonicalEnvelope
from medtrace.errors import SignatureRejected
from medtrace.models import as_utc


class HistoricKey(Protocol):
    """A key and its validity, as the key tables store them."""

    public_key: bytes
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None


K = TypeVar("K", bound=HistoricKey)


def signing_key(keys: Sequence[K], canonical: CanonicalEnvelope) -> K:
    """The key among ``keys`` (newest first) whose signature over the event verifies.

    Raises ``SignatureRejected`` (``signature.invalid``) when none does. The newest key is
    tried first, so an ordinary capture costs one Ed25519 check.
    """
    failure: SignatureRejected | None = None
    for key in keys:
        try:
            canonical.verify(key.public_key)
        except SignatureRejected as exc:
            failure = exc
            continue
        return key
    raise failure or SignatureRejected(
        f"station {canonical.station_id!r} has no key", rule="signature.invalid"
    )


def check_key_usable(key: HistoricKey, *, owner: str, name: str, event_time: dt.datetime) -> None:
    """Refuse an event signed by a revoked key, or by a rotated key after its rotation.

    ``owner`` names the kind of signer in the rule (``station.key_revoked``,
    ``sensor.key_rotated``); ``name`` is the signer's id, for the message.
    """
    if key.revoked_at is not None:
        raise SignatureRejected(
            f"{owner} {name!r} signed with a key revoked at "
            f"{as_utc(key.revoked_at).isoformat(timespec='seconds')}",
            rule=f"{owner}.key_revoked",
        )
    if key.valid_until is not None and event_time >= as_utc(key.valid_until):
        raise SignatureRejected(
            f"{owner} {name!r} signed an event of {event_time.isoformat()} with a key "
            f"rotated out at {as_utc(key.valid_until).isoformat(timespec='seconds')}",
            rule=f"{owner}.key_rotated",
        )
