"""A shipper's consignments on the road, with the temperature their sensors report.

A consignment is what one participant sent to one destination in one case or pallet (or
loose), of one product and lot, still in transit. Its temperature is read the way the verify
page reads a unit's (``medtrace.services.temperature``): the readings of the sensors bound to
the shipment's SSCC or to the places it passed, of one of its units (they travelled
together), here only those since it left.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import Session

from medtrace.models import Participant, Unit, UnitState, as_utc
from medtrace.schemas.sensors import TemperatureBand, TemperaturePoint
from medtrace.services.temperature import TemperaturePolicy, policy_for_product, unit_temperature
from medtrace.store import events as event_store
from medtrace.store import recalls as recall_store
from medtrace.store import units as unit_store


@dataclass(frozen=True)
class Consignment:
    """Units of one product and lot on their way to one place, in one case (or loose)."""

    destination_gln: str
    destination: str
    sscc: str | None
    gtin: str
    lot: str
    units: int
    returned: bool
    since: dt.datetime
    band: TemperatureBand
    readings: int
    out_of_band: int
    latest: TemperaturePoint | None


def shipments_in_transit(
    *, session: Session, participant: Participant, policy: TemperaturePolicy
) -> list[Consignment]:
    """The participant's consignments still in transit, the oldest first."""
    groups: dict[tuple[str, str | None, str, str, bool], list[Unit]] = defaultdict(list)
    for unit in unit_store.get_moving(session=session, holder_gln=participant.gln):
        assert unit.destination_gln is not None
        returned = unit.state is UnitState.RETURNED
        groups[(unit.destination_gln, unit.parent_sscc, unit.gtin, unit.lot, returned)].append(unit)
    names = recall_store.participants_by_gln(session=session, glns={key[0] for key in groups})
    consignments = []
    for (destination, sscc, gtin, lot, returned), units in groups.items():
        events = event_store.get_unit_events(session=session, gtin=gtin, serial=units[0].serial)
        since = as_utc(events[-1].event_time)  # the shipment (or return) that is under way
        product_policy = policy_for_product(session=session, gtin=gtin, default=policy)
        history = unit_temperature(session=session, events=events, policy=product_policy)
        on_the_road = [p for p in history.series if p.time >= since]
        band = history.band
        consignments.append(
            Consignment(
                destination_gln=destination,
                destination=names[destination].name if destination in names else destination,
                sscc=sscc,
                gtin=gtin,
                lot=lot,
                units=len(units),
                returned=returned,
                since=since,
                band=band,
                readings=len(on_the_road),
                out_of_band=sum(
                    1 for p in on_the_road if not band.min_c <= p.celsius <= band.max_c
                ),
                latest=on_the_road[-1] if on_the_road else None,
            )
        )
    return sorted(consignments, key=lambda c: c.since)
