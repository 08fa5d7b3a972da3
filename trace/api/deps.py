"""Dependencies shared by routes, as ``Annotated`` aliases.

Those that only read the app's state are ``async``: FastAPI runs a plain ``def`` dependency in
its thread pool, and a hop there and back for each would cost more than the dependency itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

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

_bearer = HTTPBearer(auto_error=False, description="A participant's API token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The bearer token as sent, for routes that answer its refusal in their own error shape."""


async def get_engine(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_signer(request: Request) -> NoteSigner:
    """The log's checkpoint signer (its public half is published)."""
    signer: NoteSigner = request.app.state.signer
    return signer


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def refuse_nul_characters(request: Request) -> None:
    """Refuse a NUL character in the path or the query: no identifier holds one, and
    PostgreSQL text cannot, so it would otherwise reach the database as an error."""
    if "\x00" in request.url.path or "%00" in request.url.query.lower():
        raise InvalidInput("the URL holds a NUL character", rule="input.nul_character")


EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SignerDep = Annotated[NoteSigner, Depends(get_signer)]


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
