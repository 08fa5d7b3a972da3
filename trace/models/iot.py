"""Tables of the IoT part: sensors, their readings, refused readings, and bindings.

A reading is keyed by (sensor id, sequence number): the primary key is what makes capture
exactly-once, since a redelivered message can never make a second row. Refused readings are
kept with their reason rather than dropped, so a forged or replayed message leaves a trace.
A binding says where a sensor measured during a time range: at a place (a GLN) or with a
shipment (an SSCC). A grant lets another participant's sensors measure at a place or with a
shipment of the grantor's, until it is revoked.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlmodel import Field, SQLModel

from medtrace.models import enum_type, utc_column, utcnow


class BindingKind(StrEnum):
    """What a sensor is bound to: a place (GLN) or a shipment (SSCC)."""

    PLACE = "place"
    SHIPMENT = "shipment"


class Sensor(SQLModel, table=True):
    """A temperature logger, registered by its participant; ``public_key`` is its newest key,
    every key it had is in ``SensorKey``."""

    __tablename__ = "sensors"

    sensor_id: str = Field(sa_column=Column(String(64), primary_key=True))
    participant_id: int = Field(foreign_key="participants.id", index=True)
    public_key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class SensorKey(SQLModel, table=True):
    """One Ed25519 key of a sensor and when it was valid (see ``medtrace.key_history``): a
    rotated key still signs readings taken before the rotation, a revoked one nothing that
    arrives afterwards. Keys are never deleted, so old readings stay verifiable."""

    __tablename__ = "sensor_keys"

    id: int | None = Field(default=None, primary_key=True)
    sensor_id: str = Field(
        sa_column=Column(String(64), ForeignKey("sensors.sensor_id"), nullable=False, index=True)
    )
    public_key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    valid_from: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    valid_until: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Reading(SQLModel, table=True):
    """A verified reading; its signed message is the ledger leaf at ``leaf_index``."""

    __tablename__ = "sensor_readings"
    __table_args__ = (Index("ix_sensor_readings_time", "sensor_id", "taken_at"),)

    sensor_id: str = Field(
        sa_column=Column(String(64), ForeignKey("sensors.sensor_id"), primary_key=True)
    )
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    taken_at: dt.datetime = Field(sa_column=utc_column())
    temperature_c: float = Field(sa_column=Column(Float, nullable=False))
    humidity_pct: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    digest: str = Field(sa_column=Column(String(64), nullable=False))
    leaf_index: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ReadingReject(SQLModel, table=True):
    """A message that failed verification, kept with the rule it broke."""

    __tablename__ = "sensor_rejects"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    digest: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    sensor_id: str | None = Field(default=None, sa_column=Column(String(64), index=True))
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    rule: str = Field(sa_column=Column(String(64), nullable=False))
    message: str = Field(sa_column=Column(Text, nullable=False))
    topic: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class SensorBinding(SQLModel, table=True):
    """A sensor measured at a place or with a shipment from ``valid_from`` to ``valid_to``."""

    __tablename__ = "sensor_bindings"
    __table_args__ = (Index("ix_sensor_bindings_target", "kind", "target"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    sensor_id: str = Field(
        sa_column=Column(String(64), ForeignKey("sensors.sensor_id"), nullable=False, index=True)
    )
    kind: BindingKind = Field(sa_type=enum_type(BindingKind))
    target: str = Field(sa_type=String(18), description="A GLN (13 digits) or an SSCC (18)")
    valid_from: dt.datetime = Field(sa_column=utc_column())
    valid_to: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class SensorGrant(SQLModel, table=True):
    """The holder of a place or a party to a shipment (``grantor``) lets ``grantee``'s sensors
    measure there, from ``granted_at`` until ``revoked_at``.

    Grants are never deleted: a revoked grant still says which readings counted before the
    revocation, and who allowed them.
    """

    __tablename__ = "sensor_grants"
    __table_args__ = (Index("ix_sensor_grants_target", "kind", "target"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    grantor_id: int = Field(foreign_key="participants.id", index=True)
    grantee_id: int = Field(foreign_key="participants.id", index=True)
    kind: BindingKind = Field(sa_type=enum_type(BindingKind))
    target: str = Field(sa_type=String(18), description="A GLN (13 digits) or an SSCC (18)")
    granted_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
