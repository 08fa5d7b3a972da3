"""``POST /api/v1/capture``: signed envelopes from scan stations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from medtrace.api.deps import (
    CurrentParticipant,
    MetricsDep,
    ReplayWindowDep,
    SessionDep,
    SettingsDep,
)
from medtrace.custody import ReceiptPolicy
from medtrace.errors import InvalidInput
from medtrace.protocol.headers import CATCH_UP_HEADER
from medtrace.schemas.capture import CaptureResponse, EnvelopeIn
from medtrace.services.capture import capture_envelopes

router = APIRouter(prefix="/api/v1/capture", tags=["capture"])


@router.post("", response_model=CaptureResponse, status_code=status.HTTP_201_CREATED)
def capture(
    envelopes: list[EnvelopeIn],
    participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
    replay: ReplayWindowDep,
    metrics: MetricsDep,
    response: Response,
    catch_up: Annotated[
        bool,
        Header(
            alias=CATCH_UP_HEADER,
            description="A station outbox sending what it held while offline: events may be "
            "as old as MEDTRACE_CATCH_UP_WINDOW instead of MEDTRACE_REPLAY_WINDOW",
        ),
    ] = False,
) -> CaptureResponse:
    """Capture a batch of signed envelopes, all or nothing.

    Answers 201 with one receipt per envelope (event id, leaf index) once they are durable;
    200 when every envelope was captured before (a retry). A refusal names the rule and the
    envelope's ``index`` and writes nothing.
    """
    if len(envelopes) > settings.capture.max_capture_batch:
        raise InvalidInput(
            f"at most {settings.capture.max_capture_batch} envelopes per request",
            rule="capture.batch_too_large",
        )
    results = capture_envelopes(
        session=session,
        participant=participant,
        envelopes=envelopes,
        replay=replay,
        catch_up=catch_up,
        receipt_policy=ReceiptPolicy(settings.capture.receipt_policy),
        min_transit=dt.timedelta(seconds=settings.capture.min_transit_seconds),
    )
    metrics.count_captured([str(e.event.get("type")) for e in envelopes], results)
    if all(r.duplicate for r in results):
        response.status_code = status.HTTP_200_OK
    return CaptureResponse(results=results, count=len(results))
