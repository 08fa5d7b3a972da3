"""Dependencies shared by routes, as ``Annotated`` aliases.

Those that only read the app's state are ``async``: FastAPI runs a plain ``def`` dependency in
its thread pool, and a hop there and back for each would cost more than the dependency itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from medtrace.api.observe import Metrics
from medtrace.bounds import MAX_BIGINT as MAX_BIGINT  # the routes' bound, re-exported
from medtrace.config import Settings
from medtrace.errors import InvalidInput
from medtrace.ledger import NoteSigner
from medtrace.models import Participant
from medtrace.policies import temperature_policy
from medtrace.services import registry
from medtrace.services.capture import ReplayWindow
from medtrace.services.temperature import TemperaturePolicy

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="A participant's API token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The bearer token as sent, for routes that answer its refusal in their own error shape."""


def _app_state(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency answering ``app.state.<name>``, of type ``kind``, which ``create_app``
    set once: the engine, the settings the app was built with, the log's checkpoint signer
    (its public half is published), the Prometheus metrics."""

    async def from_app_state(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    from_app_state.__name__ = f"app_state_{name}"
    return from_app_state


async def refuse_nul_characters(request: Request) -> None:
    """Refuse a NUL character in the path or the query: no identifier holds one, and
    PostgreSQL text cannot, so it would otherwise reach the database as an error."""
    if "\x00" in request.url.path or "%00" in request.url.query.lower():
        raise InvalidInput("the URL holds a NUL character", rule="input.nul_character")


EngineDep = Annotated[Engine, Depends(_app_state("engine", Engine))]
MetricsDep = Annotated[Metrics, Depends(_app_state("metrics", Metrics))]
SettingsDep = Annotated[Settings, Depends(_app_state("settings", Settings))]
SignerDep = Annotated[NoteSigner, Depends(_app_state("signer", NoteSigner))]


def get_session(engine: EngineDep) -> Iterator[Session]:
    """A session with no transaction begun: the service called owns the transaction."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_participant(
    engine: EngineDep,
    credentials: BearerDep,
) -> Participant:
    """The participant whose token the request carries (checked in its own session, so the
    route's session starts clean)."""
    with Session(engine) as session:
        participant = registry.authenticate(
            session=session, token=credentials.credentials if credentials else None
        )
        session.expunge(participant)
    return participant


CurrentParticipant = Annotated[Participant, Depends(get_current_participant)]


async def get_temperature_policy(settings: SettingsDep) -> TemperaturePolicy:
    """The default temperature band and gap of the settings; a product's own storage band,
    where a lot record gave one, takes precedence in the service."""
    return temperature_policy(settings)


TemperaturePolicyDep = Annotated[TemperaturePolicy, Depends(get_temperature_policy)]


async def get_replay_window(settings: SettingsDep) -> ReplayWindow:
    """How old a signed event may be when it arrives, from the settings."""
    return ReplayWindow(
        window=dt.timedelta(seconds=settings.capture.replay_window),
        catch_up_window=dt.timedelta(seconds=settings.capture.catch_up_window),
    )


ReplayWindowDep = Annotated[ReplayWindow, Depends(get_replay_window)]
