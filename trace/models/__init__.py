"""The domain model: the shared vocabulary and the core tables (``table=True``).

Vocabularies (roles, states, verdicts) are the ones in DESIGN.md. Each part of the product
that needs tables of its own keeps them in a submodule here (``medtrace.models.<area>``),
importing the helpers below; the migrations import every submodule. Table models never leave
the service layer: routes return the ``...Public`` shapes of ``medtrace.schemas``, so a token
hash or a private detail can never leak into a response.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Attach UTC to a naive datetime read back from SQLite (which drops the zone)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Role(StrEnum):
    """What a participant does in the supply chain."""

    MANUFACTURER = "manufacturer"
    DISTRIBUTOR = "distributor"
    PHARMACY = "pharmacy"
    REGULATOR = "regulator"


class UnitState(StrEnum):
    """Where a unit is in its life (DESIGN.md, 'Verdicts and states')."""

    COMMISSIONED = "commissioned"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    STORED = "stored"
    DISPENSED = "dispensed"
    RETURNED = "returned"
    DESTROYED = "destroyed"
    EXPORTED = "exported"
    DECOMMISSIONED = "decommissioned"


class EventType(StrEnum):
    """The custody events a station can sign (each maps to one EPCIS 2.0 event)."""

    COMMISSION = "commission"
    PACK = "pack"
    UNPACK = "unpack"
    SHIP = "ship"
    RECEIVE = "receive"
    STORE = "store"
    DISPENSE = "dispense"
    RETURN = "return"
    DESTROY = "destroy"
    EXPORT = "export"
    DECOMMISSION = "decommission"
    QUARANTINE = "quarantine"
    RELEASE = "release"


class Verdict(StrEnum):
    """Can this unit be trusted; declared worst first, so the first that applies wins."""

    UNKNOWN = "unknown"
    SUSPECT = "suspect"
    RECALLED = "recalled"
    QUARANTINED = "quarantined"
    EXPIRED = "expired"
    GENUINE = "genuine"


def enum_type(enum: type[StrEnum]) -> SAEnum:
    """A VARCHAR column that reads back as the enum (no database-native enum type)."""
    return SAEnum(
        enum, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
    )


def utc_column(*, nullable: bool = False) -> Column[dt.datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


# --- tables -----------------------------------------------------------------------------------


class Participant(SQLModel, table=True):
    """An organisation with a GLN: a manufacturer, distributor, pharmacy or regulator."""

    __tablename__ = "participants"

    id: int | None = Field(default=None, primary_key=True)
    gln: str = Field(sa_column=Column(String(13), unique=True, nullable=False))
    name: str
    role: Role = Field(sa_type=enum_type(Role))
    city: str = ""
    company_prefix: str | None = Field(default=None, sa_type=String(12))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ApiToken(SQLModel, table=True):
    """A participant's API token, stored only as its SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participants.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Station(SQLModel, table=True):
    """A scan station, registered by its participant.

    ``public_key`` is its newest key; every key it ever had, with the time each was valid,
    is in ``StationKey`` (the capture rules and the signature checks read that history).
    """

    __tablename__ = "stations"

    station_id: str = Field(sa_column=Column(String(64), primary_key=True))
    participant_id: int = Field(foreign_key="participants.id", index=True)
    public_key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class StationKey(SQLModel, table=True):
    """One Ed25519 key of a station and when it was valid.

    A rotation ends the old key's validity (``valid_until``): events it signed before then are
    still accepted, so a station's outbox can drain after the rotation. A revocation
    (``revoked_at``, for a key that may be compromised) refuses every event that arrives
    afterwards, whatever time it claims. Keys are never deleted, so old signatures stay
    verifiable.
    """

    __tablename__ = "station_keys"

    id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(
        sa_column=Column(String(64), ForeignKey("stations.station_id"), nullable=False, index=True)
    )
    public_key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    valid_from: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())
    valid_until: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Unit(SQLModel, table=True):
    """One serialised pack or device and its current custody state.

    ``parent_sscc`` is the case or pallet it is packed in; ``location_gln`` the place it is
    kept (a warehouse, a fridge) while held; ``quarantined`` the QA flag, orthogonal to state.
    """

    __tablename__ = "units"
    __table_args__ = (
        Index("ix_units_gtin_lot", "gtin", "lot", "serial"),
        Index("ix_units_location", "location_gln", "state"),
    )

    gtin: str = Field(sa_column=Column(String(14), primary_key=True))
    serial: str = Field(sa_column=Column(String(20), primary_key=True))
    lot: str = Field(sa_type=String(20))
    expiry: dt.date
    state: UnitState = Field(sa_type=enum_type(UnitState))
    holder_gln: str = Field(sa_type=String(13), index=True)
    destination_gln: str | None = Field(default=None, sa_type=String(13))
    location_gln: str | None = Field(default=None, sa_type=String(13))
    parent_sscc: str | None = Field(default=None, sa_type=String(18), index=True)
    quarantined: bool = False
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Container(SQLModel, table=True):
    """A logistic unit (a case, a pallet) identified by its SSCC (GS1 AI 00).

    It exists from the first time something is packed into it; a move of the container moves
    everything inside it (``Unit.parent_sscc`` / ``Container.parent_sscc``), recursively.
    """

    __tablename__ = "containers"
    __table_args__ = (Index("ix_containers_location", "location_gln", "state"),)

    sscc: str = Field(sa_column=Column(String(18), primary_key=True))
    state: UnitState = Field(sa_type=enum_type(UnitState))
    holder_gln: str = Field(sa_type=String(13), index=True)
    destination_gln: str | None = Field(default=None, sa_type=String(13))
    location_gln: str | None = Field(default=None, sa_type=String(13))
    parent_sscc: str | None = Field(default=None, sa_type=String(18), index=True)
    quarantined: bool = False
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Event(SQLModel, table=True):
    """A captured custody event; its signed envelope is the ledger leaf at ``leaf_index``.

    It names one object: a unit (``gtin`` + ``serial``) or a container (``sscc``).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_unit", "gtin", "serial", "leaf_index"),
        Index("ix_events_sscc", "sscc", "leaf_index"),
        Index("ix_events_epcis_id", "epcis_id"),
        Index("ix_events_time", "event_time"),
        # The places a participant stored at (a fridge inside its site), for binding its
        # sensors there: partial, so only store events pay for it.
        Index(
            "ix_events_store_place",
            "biz_location",
            "gln",
            sqlite_where=text("type = 'store'"),
            postgresql_where=text("type = 'store'"),
        ),
    )

    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    leaf_index: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    type: EventType = Field(sa_type=enum_type(EventType))
    gtin: str | None = Field(default=None, sa_type=String(14))
    serial: str | None = Field(default=None, sa_type=String(20))
    sscc: str | None = Field(default=None, sa_type=String(18))
    gln: str = Field(sa_type=String(13))
    destination_gln: str | None = Field(default=None, sa_type=String(13))
    biz_location: str | None = Field(
        default=None, sa_type=String(13), description="EPCIS bizLocation: where it is after"
    )
    epcis_id: str = Field(sa_type=String(100), description="CBV 2.0 event hash of its EPCIS form")
    event_time: dt.datetime = Field(sa_column=utc_column())
    station_id: str | None = Field(
        default=None,
        sa_column=Column(String(64), ForeignKey("stations.station_id"), nullable=True),
        description="The signing station; None when the participant's token authenticated it",
    )
    participant_id: int = Field(foreign_key="participants.id")
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class EventUnit(SQLModel, table=True):
    """Which units an event moved: the unit it names, or every unit inside the container it
    names (at any depth) and those it packs or unpacks. A unit's history is then one indexed
    query, whichever case or pallet carried it."""

    __tablename__ = "event_units"

    gtin: str = Field(sa_column=Column(String(14), primary_key=True))
    serial: str = Field(sa_column=Column(String(20), primary_key=True))
    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True))
    event_id: str = Field(
        sa_column=Column(String(64), ForeignKey("events.event_id"), nullable=False)
    )
