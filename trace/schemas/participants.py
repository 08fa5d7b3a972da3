"""Wire shapes of participants as the public may see them."""

from __future__ import annotations

from pydantic import BaseModel

from medtrace.models import Role


class ParticipantPublic(BaseModel):
    """What the public verify page may show of a participant (DESIGN.md, 'Privacy')."""

    gln: str
    name: str
    role: Role
    city: str
