"""GS1 EPCIS 2.0 REST binding: named queries and their subscriptions, ``/epcis/queries``.

Each participant's queries and subscriptions are its own: another participant's are not
found, whoever knows their names. Events are read, and pushed, as the query's owner may see
them through ``GET /epcis/events``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from medtrace.api.deps import CurrentParticipant, SessionDep, SettingsDep
from medtrace.api.routes.epcis import query_answer
from medtrace.schemas.subscriptions import (
    NamedQueryCreate,
    NamedQueryPublic,
    SubscriptionCreate,
    SubscriptionPublic,
)
from medtrace.services import subscriptions

router = APIRouter(prefix="/epcis/queries", tags=["epcis"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NamedQueryPublic)
def create_query(
    query_in: NamedQueryCreate, participant: CurrentParticipant, session: SessionDep
) -> JSONResponse:
    """Keep a SimpleEventQuery under a name (``409 epcis.query_exists`` if taken)."""
    created = subscriptions.create_query(
        session=session, participant=participant, query_in=query_in
    )
    return JSONResponse(
        created.model_dump(),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/epcis/queries/{created.name}"},
    )


@router.get("", response_model=list[NamedQueryPublic])
def list_queries(participant: CurrentParticipant, session: SessionDep) -> list[NamedQueryPublic]:
    """The caller's named queries."""
    return subscriptions.list_queries(session=session, participant=participant)


@router.get("/{query_name}", response_model=NamedQueryPublic)
def read_query(
    query_name: str, participant: CurrentParticipant, session: SessionDep
) -> NamedQueryPublic:
    """One of the caller's named queries."""
    return subscriptions.get_query(session=session, participant=participant, name=query_name)


@router.delete("/{query_name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_query(query_name: str, participant: CurrentParticipant, session: SessionDep) -> Response:
    """Forget a named query, ending its subscriptions."""
    subscriptions.delete_query(session=session, participant=participant, name=query_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{query_name}/events")
def query_events(
    query_name: str,
    request: Request,
    participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
    per_page: Annotated[int, Query(alias="perPage")] = 30,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken")] = None,
) -> Response:
    """The named query's events the caller may see, as an EPCISQueryDocument (XML if
    preferred)."""
    page = subscriptions.run_query(
        session=session,
        participant=participant,
        name=query_name,
        per_page=per_page,
        next_page_token=next_page_token,
    )
    return query_answer(
        page, request=request, public_url=settings.public_url, query_name=query_name
    )


@router.post(
    "/{query_name}/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionPublic,
    response_model_by_alias=True,
)
def subscribe(
    query_name: str,
    subscription_in: SubscriptionCreate,
    response: Response,
    participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
) -> SubscriptionPublic:
    """Push the query's events to ``dest`` as they are captured (``stream: true``), signed
    like alert webhooks with the client's ``signatureToken`` (never shown again).

    ``dest`` must resolve to public addresses only (or to the networks the operator allowed):
    anything else is refused with ``422 webhook.forbidden_address``."""
    made = subscriptions.subscribe(
        session=session,
        participant=participant,
        name=query_name,
        subscription_in=subscription_in,
        allowed_networks=settings.webhooks.allowed_networks,
    )
    response.headers["Location"] = (
        f"/epcis/queries/{query_name}/subscriptions/{made.subscription_id}"
    )
    return made


@router.get(
    "/{query_name}/subscriptions",
    response_model=list[SubscriptionPublic],
    response_model_by_alias=True,
)
def list_subscriptions(
    query_name: str, participant: CurrentParticipant, session: SessionDep
) -> list[SubscriptionPublic]:
    """The subscriptions of one of the caller's queries (their tokens are not shown)."""
    return subscriptions.list_subscriptions(
        session=session, participant=participant, name=query_name
    )


@router.delete(
    "/{query_name}/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT
)
def unsubscribe(
    query_name: str, subscription_id: str, participant: CurrentParticipant, session: SessionDep
) -> Response:
    """End a subscription; its undelivered events are dropped."""
    subscriptions.unsubscribe(
        session=session,
        participant=participant,
        name=query_name,
        subscription_id=subscription_id,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
