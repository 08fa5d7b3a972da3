"""Signing devices' rows and key histories: the station and the sensor tables alike.

A kind of device is a table of devices keyed by ``<kind>_id`` and a table of its keys with
the same column; ``DeviceTables`` names the pair, and every query here serves both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlmodel import Session, col, select

from medtrace.models import Station, StationKey
from medtrace.models.iot import Sensor, SensorKey


class DeviceRow(Protocol):
    """A device row (``Station``, ``Sensor``)."""

    public_key: bytes
    created_at: dt.datetime


D = TypeVar("D", bound=DeviceRow)
K = TypeVar("K")


@dataclass(frozen=True)
class DeviceTables(Generic[D, K]):
    """One kind's two tables and the id column (``station_id``, ``sensor_id``) both carry."""

    device: type[D]
    key: type[K]
    id_column: str

    def id_of(self, row: D | K) -> str:
        """The device id a device or key row belongs to."""
        device_id: str = getattr(row, self.id_column)
        return device_id

    def new_device(self, device_id: str, **fields: object) -> D:
        """A device row with this id and these other columns."""
        make: Callable[..., D] = self.device
        return make(**{self.id_column: device_id}, **fields)

    def new_key(self, device_id: str, **fields: object) -> K:
        """A key row of the device with this id."""
        make: Callable[..., K] = self.key
        return make(**{self.id_column: device_id}, **fields)


STATIONS = DeviceTables(Station, StationKey, "station_id")
SENSORS = DeviceTables(Sensor, SensorKey, "sensor_id")


def _column(table: type[Any], name: str) -> Any:
    return col(getattr(table, name))


def get_device(*, session: Session, tables: DeviceTables[D, K], device_id: str) -> D | None:
    """The device with this id."""
    return session.get(tables.device, device_id)


def get_devices(
    *, session: Session, tables: DeviceTables[D, K], device_ids: Iterable[str]
) -> dict[str, D]:
    """Devices by id, in one query (a capture batch checks all its devices at once)."""
    wanted = set(device_ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(tables.device).where(_column(tables.device, tables.id_column).in_(wanted))
    )
    return {tables.id_of(row): row for row in rows}


def get_keys(
    *, session: Session, tables: DeviceTables[D, K], device_ids: Iterable[str]
) -> dict[str, list[K]]:
    """Every key of each device, newest first, in one query."""
    wanted = set(device_ids)
    keys: dict[str, list[K]] = {device_id: [] for device_id in wanted}
    if not wanted:
        return keys
    rows = session.exec(
        select(tables.key)
        .where(_column(tables.key, tables.id_column).in_(wanted))
        .order_by(_column(tables.key, "id").desc())
    )
    for row in rows:
        keys[tables.id_of(row)].append(row)
    return keys


def add_device(*, session: Session, tables: DeviceTables[D, K], device: D) -> D:
    """Insert a device with its first key (valid from the device's creation), and flush."""
    session.add(device)
    session.flush()
    first_key = tables.new_key(
        tables.id_of(device), public_key=device.public_key, valid_from=device.created_at
    )
    add_key(session=session, key=first_key)
    return device


def add_key(*, session: Session, key: K) -> K:
    """Insert a device's new key and flush."""
    session.add(key)
    session.flush()
    return key
