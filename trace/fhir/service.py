"""Read and search FHIR resources: the queries behind ``/fhir``.

Search parameters follow FHIR R4's definitions for each resource (``udi-di``,
``udi-carrier``, ``lot-number``, ``code``, ``whenhandedover`` with its date prefixes,
``target``), plus ``_id``, ``_count`` and ``_offset`` for paging. An unknown parameter is an
error rather than silently ignored, so a hospital never mistakes a broader answer for the one
it asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from biip import ParseError
from biip.gs1_messages import GS1Message
from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from medtrace import ledger
from medtrace.bounds import MAX_BIGINT, within_time_range
from medtrace.errors import InvalidInput, NotFound
from medtrace.fhir import resources
from medtrace.fhir.ids import gtin_and_value
from medtrace.models import Event, EventType, Participant, Unit

DEFAULT_COUNT = 50
MAX_COUNT = 500
_PAGING = frozenset({"_count", "_offset"})
_DATE_PREFIXES = {"eq", "ne", "gt", "lt", "ge", "le"}


@dataclass(frozen=True)
class Page:
    """One page of matches, and how many there are in all."""

    resources: list[dict[str, Any]]
    total: int


def read(
    *, session: Session, resource_type: str, resource_id: str, base_url: str
) -> dict[str, Any]:
    """One resource by type and id; ``NotFound`` when there is none."""
    reader = _READERS.get(resource_type)
    if reader is None:
        raise NotFound(f"medtrace serves no {resource_type} resources", rule="fhir.unknown_type")
    return reader(session, resource_id, base_url)


def search(
    *, session: Session, resource_type: str, params: Sequence[tuple[str, str]], base_url: str
) -> dict[str, Any]:
    """A ``searchset`` Bundle with one page of matches and a ``next`` link when there are more."""
    searcher = _SEARCHES.get(resource_type)
    if searcher is None:
        raise NotFound(f"medtrace serves no {resource_type} resources", rule="fhir.unknown_type")
    count, offset = _paging(params)
    criteria = [(name, value) for name, value in params if name not in _PAGING]
    page = searcher(session, criteria, count, offset, base_url)
    link = [
        {"relation": "self", "url": _page_url(base_url, resource_type, criteria, count, offset)}
    ]
    if offset + count < page.total:
        next_url = _page_url(base_url, resource_type, criteria, count, offset + count)
        link.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": link,
        "entry": [
            {
                "fullUrl": f"{base_url}/fhir/{resource_type}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page.resources
        ],
    }


def _paging(params: Sequence[tuple[str, str]]) -> tuple[int, int]:
    values = dict(params)
    try:
        count = int(values.get("_count", DEFAULT_COUNT))
        offset = int(values.get("_offset", 0))
    except ValueError as exc:
        raise InvalidInput("_count and _offset must be integers", rule="fhir.bad_paging") from exc
    if not 0 < count <= MAX_COUNT or not 0 <= offset <= MAX_BIGINT:
        raise InvalidInput(
            f"need 0 < _count <= {MAX_COUNT} and 0 <= _offset <= {MAX_BIGINT}",
            rule="fhir.bad_paging",
        )
    return count, offset


def _page_url(
    base_url: str, resource_type: str, criteria: Sequence[tuple[str, str]], count: int, offset: int
) -> str:
    query = urlencode([*criteria, ("_count", str(count)), ("_offset", str(offset))])
    return f"{base_url}/fhir/{resource_type}?{query}"


def _only(criteria: Sequence[tuple[str, str]], allowed: set[str], resource_type: str) -> None:
    unknown = sorted({name for name, _ in criteria} - allowed)
    if unknown:
        raise InvalidInput(
            f"{resource_type} search does not support {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(allowed | _PAGING))}",
            rule="fhir.unknown_parameter",
        )


def _paged(
    session: Session, statement: SelectOfScalar[Any], count: int, offset: int
) -> tuple[list[Any], int]:
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    return list(session.exec(statement.offset(offset).limit(count)).all()), int(total)


# --- Device and Medication ------------------------------------------------------------------


def _carrier_key(carrier: str) -> tuple[str, str]:
    """GTIN and serial from a UDI carrier, in HRF ``(01)…(21)…`` or raw element-string form."""
    try:
        message = (
            GS1Message.parse_hri(carrier) if carrier.startswith("(") else GS1Message.parse(carrier)
        )
    except ParseError as exc:
        raise InvalidInput(
            f"udi-carrier {carrier!r} is not a GS1 code: {exc}", rule="fhir.bad_udi"
        ) from exc
    gtin, serial = message.element_strings.get(ai="01"), message.element_strings.get(ai="21")
    if gtin is None or serial is None:
        raise InvalidInput("udi-carrier needs AI (01) and AI (21)", rule="fhir.bad_udi")
    return gtin.value, serial.value


def _device_filter(name: str, value: str) -> ColumnElement[bool]:
    if name == "udi-di":
        return col(Unit.gtin) == value
    if name == "lot-number":
        return col(Unit.lot) == value
    if name == "udi-carrier":
        gtin, serial = _carrier_key(value)
        return (col(Unit.gtin) == gtin) & (col(Unit.serial) == serial)
    gtin, serial = gtin_and_value(value)  # _id
    return (col(Unit.gtin) == gtin) & (col(Unit.serial) == serial)


def _search_devices(
    session: Session, criteria: Sequence[tuple[str, str]], count: int, offset: int, _base: str
) -> Page:
    _only(criteria, {"udi-di", "udi-carrier", "lot-number", "_id"}, "Device")
    statement = select(Unit).order_by(col(Unit.gtin), col(Unit.serial))
    for name, value in criteria:
        statement = statement.where(_device_filter(name, value))
    units, total = _paged(session, statement, count, offset)
    return Page([resources.device(u) for u in units], total)


def _read_device(session: Session, resource_id: str, _base: str) -> dict[str, Any]:
    gtin, serial = gtin_and_value(resource_id)
    unit = session.get(Unit, (gtin, serial))
    if unit is None:
        raise NotFound(f"no Device {resource_id}", rule="fhir.not_found")
    return resources.device(unit)


def _search_medications(
    session: Session, criteria: Sequence[tuple[str, str]], count: int, offset: int, _base: str
) -> Page:
    _only(criteria, {"lot-number", "code", "_id"}, "Medication")
    statement = (
        select(Unit.gtin, Unit.lot, func.min(Unit.expiry))
        .group_by(col(Unit.gtin), col(Unit.lot))
        .order_by(col(Unit.gtin), col(Unit.lot))
    )
    for name, value in criteria:
        if name == "lot-number":
            statement = statement.where(col(Unit.lot) == value)
        elif name == "code":
            statement = statement.where(col(Unit.gtin) == value.rpartition("|")[2])
        else:
            gtin, lot = gtin_and_value(value)
            statement = statement.where(col(Unit.gtin) == gtin, col(Unit.lot) == lot)
    lots, total = _paged(session, statement, count, offset)  # type: ignore[arg-type]
    return Page([resources.medication(gtin, lot, expiry) for gtin, lot, expiry in lots], total)


def _read_medication(session: Session, resource_id: str, _base: str) -> dict[str, Any]:
    gtin, lot = gtin_and_value(resource_id)
    expiry = session.exec(
        select(func.min(Unit.expiry)).where(col(Unit.gtin) == gtin, col(Unit.lot) == lot)
    ).one()
    if expiry is None:
        raise NotFound(f"no Medication {resource_id}", rule="fhir.not_found")
    return resources.medication(gtin, lot, expiry)


# --- events -----------------------------------------------------------------------------------


def _date_filter(value: str) -> ColumnElement[bool]:
    """FHIR date search (``ge2026-11-01``, ``2026-11-22``): compare with the event time."""
    prefix, rest = (value[:2], value[2:]) if value[:2] in _DATE_PREFIXES else ("eq", value)
    try:
        start = within_time_range(dt.datetime.fromisoformat(rest))
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a FHIR date: {exc}", rule="fhir.bad_date") from exc
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    end = start + (dt.timedelta(days=1) if len(rest) == 10 else dt.timedelta(seconds=1))
    column = col(Event.event_time)
    return {
        "eq": (column >= start) & (column < end),
        "ne": (column < start) | (column >= end),
        "gt": column >= end,
        "ge": column >= start,
        "lt": column < start,
        "le": column < end,
    }[prefix]


def _lot_of(session: Session, event: Event) -> str:
    unit = session.get(Unit, (event.gtin, event.serial))
    assert unit is not None, "every event belongs to a unit"
    return unit.lot


def _supplier(session: Session, receipt: Event) -> str | None:
    """Who shipped the unit that this receipt took in: the last shipment before it."""
    return session.exec(
        select(Event.gln)
        .where(
            col(Event.gtin) == receipt.gtin,
            col(Event.serial) == receipt.serial,
            col(Event.type) == EventType.SHIP,
            col(Event.leaf_index) < receipt.leaf_index,
        )
        .order_by(col(Event.leaf_index).desc())
    ).first()


def _events(
    session: Session, kind: EventType, criteria: Sequence[tuple[str, str]], count: int, offset: int
) -> tuple[list[Event], int]:
    statement = (
        select(Event)
        .where(col(Event.type) == kind, col(Event.gtin).is_not(None))
        .order_by(col(Event.leaf_index))
    )
    for name, value in criteria:
        if name == "_id":
            statement = statement.where(col(Event.event_id) == value)
        else:
            statement = statement.where(_date_filter(value))
    return _paged(session, statement, count, offset)


def _search_dispenses(
    session: Session, criteria: Sequence[tuple[str, str]], count: int, offset: int, _base: str
) -> Page:
    _only(criteria, {"whenhandedover", "_id"}, "MedicationDispense")
    events, total = _events(session, EventType.DISPENSE, criteria, count, offset)
    return Page([resources.medication_dispense(e, _lot_of(session, e)) for e in events], total)


def _search_deliveries(
    session: Session, criteria: Sequence[tuple[str, str]], count: int, offset: int, _base: str
) -> Page:
    _only(criteria, {"_id"}, "SupplyDelivery")
    events, total = _events(session, EventType.RECEIVE, criteria, count, offset)
    return Page([resources.supply_delivery(e, _supplier(session, e)) for e in events], total)


def _event(session: Session, event_id: str, kind: EventType | None) -> Event:
    event = session.get(Event, event_id)
    if event is None or event.gtin is None or (kind is not None and event.type is not kind):
        raise NotFound(f"no such resource {event_id}", rule="fhir.not_found")
    return event


def _read_dispense(session: Session, resource_id: str, _base: str) -> dict[str, Any]:
    event = _event(session, resource_id, EventType.DISPENSE)
    return resources.medication_dispense(event, _lot_of(session, event))


def _read_delivery(session: Session, resource_id: str, _base: str) -> dict[str, Any]:
    event = _event(session, resource_id, EventType.RECEIVE)
    return resources.supply_delivery(event, _supplier(session, event))


def _provenances(session: Session, events: Sequence[Event], base_url: str) -> list[dict[str, Any]]:
    leaves = ledger.leaves_at(session.connection(), [e.leaf_index for e in events])
    ledger_url = f"{base_url}/api/v1/ledger/leaves"
    return [resources.provenance(e, leaves[e.leaf_index], ledger_url) for e in events]


def _search_provenances(
    session: Session, criteria: Sequence[tuple[str, str]], count: int, offset: int, base_url: str
) -> Page:
    _only(criteria, {"target", "_id"}, "Provenance")
    statement = select(Event).where(col(Event.gtin).is_not(None)).order_by(col(Event.leaf_index))
    for name, value in criteria:
        kind, _, target_id = value.rpartition("/")
        if name == "_id" or kind in {"MedicationDispense", "SupplyDelivery"}:
            statement = statement.where(col(Event.event_id) == (target_id or value))
        elif kind == "Device":
            gtin, serial = gtin_and_value(target_id)
            statement = statement.where(col(Event.gtin) == gtin, col(Event.serial) == serial)
        else:
            raise InvalidInput(
                "target must be Device/…, MedicationDispense/… or SupplyDelivery/…",
                rule="fhir.bad_reference",
            )
    events, total = _paged(session, statement, count, offset)
    return Page(_provenances(session, events, base_url), total)


def _read_provenance(session: Session, resource_id: str, base_url: str) -> dict[str, Any]:
    return _provenances(session, [_event(session, resource_id, None)], base_url)[0]


# --- participants -----------------------------------------------------------------------------


def _participant(session: Session, gln: str) -> Participant:
    participant = session.exec(select(Participant).where(col(Participant.gln) == gln)).first()
    if participant is None:
        raise NotFound(f"no participant with GLN {gln}", rule="fhir.not_found")
    return participant


def _search_participants(
    build: Callable[[Participant], dict[str, Any]], resource_type: str
) -> Callable[[Session, Sequence[tuple[str, str]], int, int, str], Page]:
    def search_participants(
        session: Session, criteria: Sequence[tuple[str, str]], count: int, offset: int, _base: str
    ) -> Page:
        _only(criteria, {"identifier", "_id"}, resource_type)
        statement = select(Participant).order_by(col(Participant.gln))
        for _, value in criteria:
            statement = statement.where(col(Participant.gln) == value.rpartition("|")[2])
        participants, total = _paged(session, statement, count, offset)
        return Page([build(p) for p in participants], total)

    return search_participants


_Reader = Callable[[Session, str, str], dict[str, Any]]
_Search = Callable[[Session, Sequence[tuple[str, str]], int, int, str], Page]

_READERS: dict[str, _Reader] = {
    "Device": _read_device,
    "Medication": _read_medication,
    "MedicationDispense": _read_dispense,
    "SupplyDelivery": _read_delivery,
    "Provenance": _read_provenance,
    "Organization": lambda s, i, _b: resources.organization(_participant(s, i)),
    "Location": lambda s, i, _b: resources.location(_participant(s, i)),
}

_SEARCHES: dict[str, _Search] = {
    "Device": _search_devices,
    "Medication": _search_medications,
    "MedicationDispense": _search_dispenses,
    "SupplyDelivery": _search_deliveries,
    "Provenance": _search_provenances,
    "Organization": _search_participants(resources.organization, "Organization"),
    "Location": _search_participants(resources.location, "Location"),
}

SEARCH_PARAMETERS: dict[str, list[str]] = {
    "Device": ["udi-di", "udi-carrier", "lot-number"],
    "Medication": ["lot-number", "code"],
    "MedicationDispense": ["whenhandedover"],
    "SupplyDelivery": [],
    "Provenance": ["target"],
    "Organization": ["identifier"],
    "Location": ["identifier"],
}
