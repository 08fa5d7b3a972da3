"""Each medtrace event type as EPCIS 2.0 event type, action, CBV 2.0 bizStep and disposition.

CBV 2.0 §7.1 (business steps) and §7.2 (dispositions). Packing and unpacking are
AggregationEvents (EPCIS 2.0 §7.4.3); everything else is an ObjectEvent about one unit or
container. A commissioning ADDs the object to the world, a decommissioning or destruction
DELETEs it, the rest OBSERVE it. Each type has its own (bizStep, disposition) pair, so an
EPCIS event maps back to exactly one medtrace type.

Real senders differ on the action of an object's last step: a dispensing, decommissioning or
destruction arrives with ``DELETE`` as often as with ``OBSERVE`` (``other_actions``); capture
takes either, and writes the shape's own. Terms arrive bare, as CBV 2.0 web URIs, as their
compact JSON-LD form (``cbv:BizStep-shipping``) or as CBV 1.x URNs (``bare``).
"""

from __future__ import annotations

from dataclasses import dataclass

from medtrace.models import EventType

BIZ_STEP_URI = "https://ref.gs1.org/cbv/BizStep-"
DISPOSITION_URI = "https://ref.gs1.org/cbv/Disp-"
_BIZ_STEP_URN = "urn:epcglobal:cbv:bizstep:"
_DISPOSITION_URN = "urn:epcglobal:cbv:disp:"
_PREFIXES = {
    "bizStep": (BIZ_STEP_URI, "cbv:BizStep-", _BIZ_STEP_URN),
    "disposition": (DISPOSITION_URI, "cbv:Disp-", _DISPOSITION_URN),
}
_LAST_STEP = frozenset({"OBSERVE", "DELETE"})


@dataclass(frozen=True)
class EpcisShape:
    """How one medtrace event type looks in EPCIS."""

    event_type: str
    action: str
    biz_step: str
    disposition: str
    other_actions: frozenset[str] = frozenset()

    def accepts(self, action: object) -> bool:
        """Whether a captured event with ``action`` (any JSON value) may stand for this shape."""
        return isinstance(action, str) and (action == self.action or action in self.other_actions)


SHAPES: dict[EventType, EpcisShape] = {
    EventType.COMMISSION: EpcisShape("ObjectEvent", "ADD", "commissioning", "active"),
    EventType.PACK: EpcisShape("AggregationEvent", "ADD", "packing", "in_progress"),
    EventType.UNPACK: EpcisShape("AggregationEvent", "DELETE", "unpacking", "in_progress"),
    EventType.SHIP: EpcisShape("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
    EventType.RECEIVE: EpcisShape("ObjectEvent", "OBSERVE", "receiving", "in_progress"),
    EventType.STORE: EpcisShape("ObjectEvent", "OBSERVE", "storing", "sellable_accessible"),
    EventType.DISPENSE: EpcisShape("ObjectEvent", "OBSERVE", "dispensing", "dispensed", _LAST_STEP),
    EventType.RETURN: EpcisShape("ObjectEvent", "OBSERVE", "shipping", "returned"),
    EventType.DESTROY: EpcisShape("ObjectEvent", "DELETE", "destroying", "destroyed", _LAST_STEP),
    EventType.EXPORT: EpcisShape("ObjectEvent", "OBSERVE", "departing", "in_transit"),
    EventType.DECOMMISSION: EpcisShape(
        "ObjectEvent", "DELETE", "decommissioning", "inactive", _LAST_STEP
    ),
    EventType.QUARANTINE: EpcisShape("ObjectEvent", "OBSERVE", "inspecting", "non_conformant"),
    EventType.RELEASE: EpcisShape("ObjectEvent", "OBSERVE", "inspecting", "conformant"),
}
#: A recall names a lot (an EPC class), not a unit: an ObjectEvent with a quantityList, outside
#: the custody types (nothing in capture maps back to it).
RECALL_SHAPE = EpcisShape("ObjectEvent", "OBSERVE", "holding", "recalled")
_BY_PAIR = {(s.biz_step, s.disposition): kind for kind, s in SHAPES.items()}
_BY_STEP: dict[str, EventType] = {}
for _kind, _shape in SHAPES.items():
    _BY_STEP.setdefault(_shape.biz_step, _kind)
KNOWN_BIZ_STEPS = frozenset(_BY_STEP)
KNOWN_DISPOSITIONS = frozenset(s.disposition for s in SHAPES.values())
#: Every disposition of CBV 2.0 §7.2: a captured event may name any of them.
CBV_DISPOSITIONS = frozenset(
    {
        "active", "available", "completeness_inferred", "completeness_verified",
        "conformant", "container_closed", "container_open", "damaged", "destroyed",
        "dispensed", "disposed", "encoded", "expired", "in_progress", "in_transit",
        "inactive", "mismatch_class", "mismatch_instance", "mismatch_quantity",
        "needs_replacement", "no_pedigree_match", "non_conformant", "non_sellable_other",
        "partially_dispensed", "recalled", "reserved", "retail_sold", "returned",
        "sellable_accessible", "sellable_not_accessible", "stolen", "unavailable", "unknown",
    }
)  # fmt: skip


def bare(value: str, *, kind: str) -> str:
    """A CBV term without its prefix: ``shipping`` from ``shipping``, the CBV 2.0 web URI
    (``https://ref.gs1.org/cbv/BizStep-shipping``), its compact form (``cbv:BizStep-shipping``)
    or the CBV 1.x URN."""
    for prefix in _PREFIXES[kind]:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def event_type_for(biz_step: str, disposition: str | None) -> EventType | None:
    """The medtrace type of an EPCIS event with this bizStep (and disposition, which tells
    a return from a shipment and a release from a quarantine); None if medtrace has none."""
    if disposition is not None and (biz_step, disposition) in _BY_PAIR:
        return _BY_PAIR[(biz_step, disposition)]
    return _BY_STEP.get(biz_step)


def types_with(
    *, biz_steps: set[str] | None = None, dispositions: set[str] | None = None
) -> set[EventType]:
    """The medtrace types whose EPCIS shape has one of ``biz_steps`` / ``dispositions``."""
    return {
        kind
        for kind, shape in SHAPES.items()
        if (biz_steps is None or shape.biz_step in biz_steps)
        and (dispositions is None or shape.disposition in dispositions)
    }
