"""The capture grants a capture reads stay valid until it commits: a revocation waits for
the captures that read the grant (PostgreSQL's row locks; SQLite has one writer at a time)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlmodel import Session

from medtrace.db import create_db_engine, upgrade_schema
from medtrace.demo import with_check_digit
from medtrace.models import Role, utcnow
from medtrace.schemas.grants import CaptureGrantCreate
from medtrace.services.grants import Channel, grant_capture, revoke_capture_grant
from medtrace.services.registry import create_participant, participant_by_gln
from medtrace.store.grants import granting_principals

HUB, THREE_PL = with_check_digit("952567800000"), with_check_digit("952000000001")


def test_a_revocation_waits_for_the_capture_that_read_the_grant(fresh_database_url: str) -> None:
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: no capture runs beside a revocation")
    engine = create_db_engine(fresh_database_url)
    upgrade_schema(engine)
    for gln in (HUB, THREE_PL):
        with Session(engine) as session:
            create_participant(session=session, gln=gln, name=gln, role=Role.DISTRIBUTOR)
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            hub, third = participant_by_gln(session, HUB), participant_by_gln(session, THREE_PL)
        ends = utcnow() + dt.timedelta(days=1)
        grant = grant_capture(
            session=session,
            grantor=hub,
            grant_in=CaptureGrantCreate(grantee=THREE_PL, gln=HUB, ends_at=ends),
            channel=Channel.API,
        )
    revoked = threading.Event()

    def revoke() -> None:
        with Session(engine) as session:
            revoke_capture_grant(
                session=session, grantor=hub, grant_id=grant.id, channel=Channel.API
            )
        revoked.set()

    with Session(engine) as capture, capture.begin():
        assert third.id is not None
        found = granting_principals(session=capture, grantee_id=third.id, glns={HUB}, at=utcnow())
        assert set(found) == {HUB}
        revoker = threading.Thread(target=revoke)
        revoker.start()
        assert not revoked.wait(1.0), "the revocation went through under a capture that read it"
    revoker.join(10)
    assert revoked.is_set()
    with Session(engine) as session, session.begin():
        after = granting_principals(session=session, grantee_id=third.id, glns={HUB}, at=utcnow())
        assert after == {}
    engine.dispose()
