"""Wire shapes of a container's verify answer (``/00/{sscc}``): the case or pallet, what it
holds at any depth, its path and the proofs of that path."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from medtrace.models import UnitState, Verdict
from medtrace.schemas.participants import ParticipantPublic
from medtrace.schemas.verify import VerifyEvent


class ContainerPublic(BaseModel):
    """A case or pallet's identity and custody state."""

    sscc: str
    state: UnitState
    holder: ParticipantPublic | None
    parent_sscc: str | None = Field(description="The case or pallet it is packed in, if any")
    digital_link: str


class LotCount(BaseModel):
    """How many units of one GTIN and lot the container holds, at any depth."""

    gtin: str
    lot: str
    expiry: dt.date
    units: int
    recalled: bool


class InnerContainer(BaseModel):
    """A case or pallet inside the container, with the units it holds at any depth."""

    sscc: str
    parent_sscc: str
    depth: int = Field(description="1 for what the container holds directly")
    units: int
    digital_link: str


class ContentsPublic(BaseModel):
    """What the container holds at any depth, summarised: units by GTIN and lot, and the
    cases inside it. Both lists are bounded; ``more_lots`` and ``more_containers`` count what
    was left out, so a pallet of 10⁵ units is a few lines, not 10⁵ rows."""

    units: int
    lots: list[LotCount]
    more_lots: int
    containers: list[InnerContainer]
    more_containers: int


class ContainerVerifyPublic(BaseModel):
    """Everything needed to check a container's path without trusting this service."""

    verdict: Verdict
    rule: str | None = Field(
        default=None, description="For an SSCC never used here: verify.unknown_sscc"
    )
    reasons: list[str]
    container: ContainerPublic | None
    checkpoint: str | None = Field(description="The latest signed checkpoint note")
    events: list[VerifyEvent] = Field(
        description="Its path: events naming it, and those naming the cases or pallets it is "
        "in since it was packed into them, oldest first, each with its leaf and proof"
    )
    contents: ContentsPublic | None
