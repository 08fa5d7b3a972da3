"""Temperature sensors' readings and bindings, and units' temperature histories (their
registration and keys are ``medtrace.api.routes.devices``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from medtrace.api.deps import (
    MAX_BIGINT,
    CurrentParticipant,
    MetricsDep,
    ReplayWindowDep,
    SessionDep,
    SettingsDep,
    TemperaturePolicyDep,
)
from medtrace.bounds import MAX_INTEGER
from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import check_x20, parse_gtin
from medtrace.schemas.sensors import (
    BindingCreate,
    BindingPublic,
    GrantCreate,
    GrantPublic,
    ReadingMessageIn,
    ReadingPublic,
    ReadingsResponse,
    RejectPublic,
    TemperaturePublic,
)
from medtrace.services import bindings, readings, temperature

router = APIRouter(prefix="/api/v1", tags=["sensors"])


@router.post(
    "/sensors/{sensor_id}/bindings",
    response_model=BindingPublic,
    status_code=status.HTTP_201_CREATED,
)
def bind_sensor(
    sensor_id: str,
    binding_in: BindingCreate,
    participant: CurrentParticipant,
    session: SessionDep,
    replay: ReplayWindowDep,
) -> BindingPublic:
    """Bind one of your sensors to a place (GLN) you hold or a shipment (SSCC) you ship or
    receive, or one whose holder granted it to you, from a time no older than the replay
    window and no earlier than the sensor's registration."""
    return bindings.bind_sensor(
        session=session,
        participant=participant,
        sensor_id=sensor_id,
        binding_in=binding_in,
        backdate=replay.window,
    )


@router.get("/sensors/{sensor_id}/bindings", response_model=list[BindingPublic])
def read_bindings(sensor_id: str, session: SessionDep) -> list[BindingPublic]:
    """Where a sensor has measured, oldest first."""
    return bindings.list_bindings(session=session, sensor_id=sensor_id)


@router.post("/sensor-grants", response_model=GrantPublic, status_code=status.HTTP_201_CREATED)
def grant_binding(
    grant_in: GrantCreate, participant: CurrentParticipant, session: SessionDep
) -> GrantPublic:
    """Let another participant's sensors measure at a place you hold or with a shipment
    you ship or receive, until you revoke it."""
    return bindings.grant_binding(session=session, participant=participant, grant_in=grant_in)


@router.post("/sensor-grants/{grant_id}/revoke", response_model=GrantPublic)
def revoke_grant(
    grant_id: Annotated[int, Path(ge=1, le=MAX_INTEGER)],
    participant: CurrentParticipant,
    session: SessionDep,
) -> GrantPublic:
    """Revoke a grant you gave: its grantee's readings stop counting from now."""
    return bindings.revoke_grant(session=session, participant=participant, grant_id=grant_id)


@router.get("/sensor-grants", response_model=list[GrantPublic])
def read_grants(participant: CurrentParticipant, session: SessionDep) -> list[GrantPublic]:
    """The grants you gave or received (a regulator: every grant), oldest first."""
    return bindings.list_grants(session=session, participant=participant)


@router.post("/readings", response_model=ReadingsResponse, status_code=status.HTTP_201_CREATED)
def capture_readings(
    messages: list[ReadingMessageIn],
    _participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    response: Response,
) -> ReadingsResponse:
    """Capture MQTT messages relayed by a bridge, in one transaction.

    Each message gets a receipt: ``accepted`` (with its ledger leaf), ``duplicate`` (a
    redelivery; its first leaf) or ``rejected`` (stored with the rule it broke). 201 when any
    was accepted, 200 otherwise. Acknowledge to the broker only after this answer.
    """
    if len(messages) > settings.capture.max_capture_batch:
        raise InvalidInput(
            f"at most {settings.capture.max_capture_batch} messages per request",
            rule="readings.batch_too_large",
        )
    answer = readings.capture_readings(
        session=session, messages=messages, reject_cap=settings.capture.max_rejects_per_sensor
    )
    metrics.count_readings(answer)
    if answer.accepted == 0:
        response.status_code = status.HTTP_200_OK
    return answer


@router.get("/readings/rejects", response_model=list[RejectPublic])
def read_rejects(
    participant: CurrentParticipant,
    session: SessionDep,
    sensor_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RejectPublic]:
    """The most recent refused messages of your sensors and why, newest first (a
    regulator's: every sensor's)."""
    return readings.list_rejects(
        session=session, participant=participant, sensor_id=sensor_id, limit=limit
    )


@router.get("/readings/{sensor_id}/{seq}", response_model=ReadingPublic)
def read_reading(
    sensor_id: str, seq: Annotated[int, Path(ge=0, le=MAX_BIGINT)], session: SessionDep
) -> ReadingPublic:
    """One reading, its ledger leaf and its inclusion proof against the latest checkpoint."""
    return readings.get_reading(session=session, sensor_id=sensor_id, seq=seq)


@router.get("/units/{gtin}/{serial}/temperature", response_model=TemperaturePublic)
def read_unit_temperature(
    gtin: str, serial: str, session: SessionDep, policy: TemperaturePolicyDep
) -> TemperaturePublic:
    """A unit's temperature history across every place and shipment, with its gaps."""
    return temperature.get_unit_temperature(
        session=session,
        gtin=parse_gtin(gtin),
        serial=check_x20(serial, field="serial"),
        policy=policy,
    )
