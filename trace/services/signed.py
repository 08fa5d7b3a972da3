"""Signed events about a whole lot (lot records, recalls): the checks every one needs before
its own rules run.

Custody events go through :mod:`medtrace.services.capture`, which batches them; these arrive
one at a time on their own endpoints, and each must come from an active station of the
sender, verify against that station's key, parse, and name the sender as its signer.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError
from sqlmodel import Session

from medtrace.errors import InvalidInput, SignatureRejected
from medtrace.key_history import check_key_usable, signing_key
from medtrace.models import Participant
from medtrace.protocol.envelope import CanonicalEnvelope
from medtrace.schemas.capture import EnvelopeIn
from medtrace.schemas.lots import SignedLotEvent
from medtrace.store import devices as device_store

EventT = TypeVar("EventT", bound=SignedLotEvent)


def check_signed(
    *,
    session: Session,
    participant: Participant,
    envelope: EnvelopeIn,
    model: type[EventT],
    rule_prefix: str,
) -> EventT:
    """The envelope's event, once its station is an active station of ``participant``, its
    signature verifies and it parses as ``model``.

    Raises ``SignatureRejected`` (``station.unknown``, ``station.not_yours``,
    ``signature.invalid``, ``station.key_revoked``, ``station.key_rotated``: any key the
    station ever had verifies, but a revoked key signs nothing any more and a rotated one
    only what it stamped before the rotation), or ``InvalidInput``: ``{rule_prefix}.invalid``
    naming the first bad field, ``{rule_prefix}.sender`` when the event names another station
    or GLN than the sender's.
    """
    station = device_store.get_device(
        session=session, tables=device_store.STATIONS, device_id=envelope.station_id
    )
    if station is None or station.participant_id != participant.id or not station.active:
        raise SignatureRejected(
            f"station {envelope.station_id!r} is not an active station of {participant.gln}",
            rule="station.unknown" if station is None else "station.not_yours",
        )
    keys = device_store.get_keys(
        session=session, tables=device_store.STATIONS, device_ids=[station.station_id]
    )
    key = signing_key(keys[station.station_id], CanonicalEnvelope.of(envelope.model_dump()).verify)
    event = parse_event(envelope.event, model=model, rule_prefix=rule_prefix)
    check_key_usable(key, owner="station", name=station.station_id, signed_at=event.event_time)
    if event.station_id != envelope.station_id or event.gln != participant.gln:
        raise InvalidInput(
            "the event's station or GLN is not the sender's", rule=f"{rule_prefix}.sender"
        )
    return event


def parse_event(raw: dict[str, Any], *, model: type[EventT], rule_prefix: str) -> EventT:
    """``raw`` parsed as ``model``; ``InvalidInput`` (``{rule_prefix}.invalid``) naming the
    first bad field otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidInput(f"event.{where}: {first['msg']}", rule=f"{rule_prefix}.invalid") from exc
