"""Signing devices (scan stations, temperature sensors): registration, key rotation and
revocation by their participant; public lookup, with the key history, by anyone.

One set of routes serves both kinds (``medtrace.services.devices``): ``stations_router``
mounts it under ``/api/v1/stations``, ``sensors_router`` under ``/api/v1/sensors``, each
with its kind's registration body, public view, tag and route names (so its operation ids,
``stations-register_station`` or ``sensors-rotate_sensor_key``, are each kind's own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, status
from pydantic import BaseModel

from medtrace.api.deps import CurrentParticipant, SessionDep
from medtrace.schemas.keys import KeyCreate, KeyRevoke
from medtrace.schemas.sensors import SensorCreate
from medtrace.schemas.stations import StationCreate
from medtrace.services import devices
from medtrace.services.devices import SENSORS, STATIONS, DeviceKind

C = TypeVar("C", StationCreate, SensorCreate)
P = TypeVar("P", bound=BaseModel)


def _router(
    kind: DeviceKind[Any, Any, P],
    create: type[C],
    *,
    tag: str,
    id_of: Callable[[C], str],
) -> APIRouter:
    """The register, read, rotate and revoke routes of one kind of device."""
    router = APIRouter(prefix=f"/api/v1/{tag}", tags=[tag])
    name = kind.name

    def register(device_in: C, participant: CurrentParticipant, session: SessionDep) -> P:
        """Register a device's Ed25519 public key for the calling participant."""
        return devices.register(
            session=session,
            kind=kind,
            participant=participant,
            device_id=id_of(device_in),
            public_key=device_in.public_key,
        )

    # FastAPI reads the body's model from the annotation: this kind's, not the type variable.
    register.__annotations__["device_in"] = create

    def read(device_id: str, session: SessionDep) -> P:
        """A device's keys (newest first, each with its validity) and status, to check what
        it signed at any time."""
        return devices.read(session=session, kind=kind, device_id=device_id)

    def rotate_key(
        device_id: str, key_in: KeyCreate, participant: CurrentParticipant, session: SessionDep
    ) -> P:
        """Rotate: the device's new key signs from now on; the old one only what is stamped
        before now (events, readings taken)."""
        return devices.rotate_key(
            session=session,
            kind=kind,
            participant=participant,
            device_id=device_id,
            key_in=key_in,
        )

    def revoke_keys(
        device_id: str, revoke: KeyRevoke, participant: CurrentParticipant, session: SessionDep
    ) -> P:
        """Revoke one key (or all): nothing it signs is accepted from now on, whatever time
        it claims; what it signed before stays verifiable."""
        return devices.revoke_keys(
            session=session,
            kind=kind,
            participant=participant,
            device_id=device_id,
            revoke=revoke,
        )

    router.add_api_route(
        "",
        register,
        methods=["POST"],
        response_model=kind.public,
        status_code=status.HTTP_201_CREATED,
        name=f"register_{name}",
    )
    router.add_api_route(
        "/{device_id}", read, methods=["GET"], response_model=kind.public, name=f"read_{name}"
    )
    router.add_api_route(
        "/{device_id}/keys",
        rotate_key,
        methods=["POST"],
        response_model=kind.public,
        status_code=status.HTTP_201_CREATED,
        name=f"rotate_{name}_key",
    )
    router.add_api_route(
        "/{device_id}/keys/revoke",
        revoke_keys,
        methods=["POST"],
        response_model=kind.public,
        name=f"revoke_{name}_keys",
    )
    return router


stations_router = _router(STATIONS, StationCreate, tag="stations", id_of=lambda s: s.station_id)
sensors_router = _router(SENSORS, SensorCreate, tag="sensors", id_of=lambda s: s.sensor_id)
