"""Signing devices: scan stations and temperature sensors, each registered by its participant
with an Ed25519 key, and that key's rotation and revocation.

Both kinds are one idea: a device id owned by one participant, its newest key on the device
row and every key it ever had in its key table (``medtrace.key_history`` says which key may
sign what). They differ only in their tables and in the word that names them in messages and
rules (``station.exists``, ``sensor.not_yours``): a ``DeviceKind`` carries those, and
``STATIONS`` and ``SENSORS`` are the two kinds the service knows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace import key_history
from medtrace.errors import Conflict, NotFound, SignatureRejected
from medtrace.key_history import HistoricKey, key_public
from medtrace.models import Participant, Station, StationKey, utcnow
from medtrace.models.iot import Sensor, SensorKey
from medtrace.protocol.keys import b64
from medtrace.schemas.keys import KeyCreate, KeyRevoke, decode_new_public_key, decode_public_key
from medtrace.schemas.sensors import SensorPublic
from medtrace.schemas.stations import StationPublic
from medtrace.store import devices as device_store
from medtrace.store import participants as participant_store
from medtrace.store.devices import DeviceTables


class Device(Protocol):
    """A device row, as the station and sensor tables store it."""

    participant_id: int
    public_key: bytes
    active: bool
    created_at: dt.datetime


D = TypeVar("D", bound=Device)
K = TypeVar("K", bound=HistoricKey)
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class DeviceKind(Generic[D, K, P]):
    """What the service needs to know of one kind of device: its name (in messages, rules and
    the public view's ``<name>_id``), its public view, and its tables."""

    name: str
    public: type[P]
    tables: DeviceTables[D, K]

    def find(self, session: Session, device_id: str) -> D | None:
        return device_store.get_device(session=session, tables=self.tables, device_id=device_id)

    def keys_of(self, session: Session, device_id: str) -> list[K]:
        keys = device_store.get_keys(session=session, tables=self.tables, device_ids=[device_id])
        return keys[device_id]

    def create(self, session: Session, device_id: str, participant_id: int, public_key: bytes) -> D:
        device = self.tables.new_device(
            device_id, participant_id=participant_id, public_key=public_key
        )
        return device_store.add_device(session=session, tables=self.tables, device=device)

    def add_key(self, session: Session, device_id: str, public_key: bytes, now: dt.datetime) -> K:
        key = self.tables.new_key(device_id, public_key=public_key, valid_from=now)
        return device_store.add_key(session=session, key=key)


STATIONS: DeviceKind[Station, StationKey, StationPublic] = DeviceKind(
    name="station", public=StationPublic, tables=device_store.STATIONS
)
SENSORS: DeviceKind[Sensor, SensorKey, SensorPublic] = DeviceKind(
    name="sensor", public=SensorPublic, tables=device_store.SENSORS
)


def _public(
    kind: DeviceKind[D, K, P], device_id: str, device: D, participant: Participant, keys: list[K]
) -> P:
    """The public view of a device, with its key history (newest first)."""
    return kind.public.model_validate(
        {
            f"{kind.name}_id": device_id,
            "participant": participant.gln,
            "public_key": b64(device.public_key),
            "active": device.active,
            "keys": [key_public(key) for key in keys],
        }
    )


def register(
    *,
    session: Session,
    kind: DeviceKind[D, K, P],
    participant: Participant,
    device_id: str,
    public_key: str,
) -> P:
    """Register a device's Ed25519 public key (base64) for the authenticated participant;
    ``Conflict`` (``<kind>.exists``) if the id is taken."""
    raw_key = decode_new_public_key(public_key)
    assert participant.id is not None
    try:
        with session.begin():
            device = kind.create(session, device_id, participant.id, raw_key)
            keys = kind.keys_of(session, device_id)
    except IntegrityError as exc:
        raise Conflict(
            f"{kind.name} {device_id!r} is already registered", rule=f"{kind.name}.exists"
        ) from exc
    return _public(kind, device_id, device, participant, keys)


def get_device(session: Session, kind: DeviceKind[D, K, P], device_id: str) -> D:
    """The device with this id; ``NotFound`` (``<kind>.unknown``) if it was never registered."""
    device = kind.find(session, device_id)
    if device is None:
        raise NotFound(f"no {kind.name} {device_id!r}", rule=f"{kind.name}.unknown")
    return device


def own_device(
    session: Session, kind: DeviceKind[D, K, P], participant: Participant, device_id: str
) -> D:
    """The caller's device with this id: only its owner may change its keys or bind it
    (``SignatureRejected``, ``<kind>.not_yours``, for another participant's)."""
    device = get_device(session, kind, device_id)
    if device.participant_id != participant.id:
        raise SignatureRejected(
            f"{kind.name} {device_id!r} belongs to another participant",
            rule=f"{kind.name}.not_yours",
        )
    return device


def read(*, session: Session, kind: DeviceKind[D, K, P], device_id: str) -> P:
    """A device's public view, for anyone to check what it signed at any time."""
    device = get_device(session, kind, device_id)
    participant = participant_store.get_participant(
        session=session, participant_id=device.participant_id
    )
    assert participant is not None
    return _public(kind, device_id, device, participant, kind.keys_of(session, device_id))


def rotate_key(
    *,
    session: Session,
    kind: DeviceKind[D, K, P],
    participant: Participant,
    device_id: str,
    key_in: KeyCreate,
) -> P:
    """Give the caller's device a new key; its current keys are valid until now.

    What an old key signed before now is still accepted (a station's outbox or a logger's
    memory drains after a rotation); a key the device had before cannot come back
    (``key.reused``).
    """
    public_key = decode_new_public_key(key_in.public_key)
    with session.begin():
        device = own_device(session, kind, participant, device_id)
        now = utcnow()
        key_history.retire_for(kind.keys_of(session, device_id), public_key, now=now)
        kind.add_key(session, device_id, public_key, now)
        device.public_key = public_key
        session.add(device)
        keys = kind.keys_of(session, device_id)
    return _public(kind, device_id, device, participant, keys)


def revoke_keys(
    *,
    session: Session,
    kind: DeviceKind[D, K, P],
    participant: Participant,
    device_id: str,
    revoke: KeyRevoke,
) -> P:
    """Revoke one key of the caller's device (``public_key``) or every key not yet revoked.

    From now on nothing signed by a revoked key is accepted, whatever time it claims; the
    device signs again after a rotation to a new key.
    """
    wanted = decode_public_key(revoke.public_key) if revoke.public_key is not None else None
    with session.begin():
        device = own_device(session, kind, participant, device_id)
        keys = kind.keys_of(session, device_id)
        session.add_all(key_history.revoke(keys, wanted, now=utcnow()))
        session.flush()
    return _public(kind, device_id, device, participant, keys)
